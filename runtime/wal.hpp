// Framing of the records in WAL segments and in the small files of a data directory
// (docs/storage.md). A frame is
//   u32 length | u32 CRC32C of the length bytes | u32 CRC32C of the payload | payload
// in little-endian order. The header has its own checksum so that a damaged length is told
// apart from a record that a crash cut short.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cafraft::wal {

constexpr size_t header_size = 12;
constexpr uint32_t max_payload = 256u << 20;

/// The frame of one record.
std::string frame(std::string_view payload);
/// Appends the frame of one record to `out` (no copy of the frame itself).
void append_frame(std::string& out, std::string_view payload);

/// How the valid records of a file end.
enum class tail {
  clean,   // the last record ends at the end of the file
  torn,    // the file ends in the middle of a record, or in zeros: a write that a crash cut
  corrupt, // a record is damaged: data that was written whole is wrong
};

struct scan_result {
  std::vector<std::string_view> payloads; // views into the scanned buffer
  uint64_t valid_bytes = 0;               // where the last whole, valid record ends
  tail end = tail::clean;
  std::string problem; // what was found at valid_bytes when end != clean
};

/// What zeros after the last record are.
enum class zeros {
  torn,     // the file grew but its data did not reach the disk
  reserved, // space reserved ahead of the writes (a preallocated WAL segment): the records
            // end there, and a record whose end is zeros with nothing after it is torn
};

/// Reads the records of a file one at a time, until the end or the first bad one. A file read
/// in chunks (the first constructor) costs a chunk of memory, or one record when that is
/// larger, however large the file is; how the records end is decided exactly as for the file
/// read whole.
class reader {
public:
  /// Returns up to `len` bytes of the file from `offset`: fewer only at its end.
  using fetch_fn = std::function<std::string(uint64_t offset, size_t len)>;

  reader(fetch_fn fetch, zeros after, size_t chunk = 1u << 20);
  /// Over a file in memory: no copies, and the payloads are views into `file`.
  explicit reader(std::string_view file, zeros after = zeros::torn);

  /// The payload of the next record, or nothing once the records end (end() and problem() then
  /// say how). Read in chunks, the view is valid until the next call.
  std::optional<std::string_view> next();

  /// Where the record that next() returned last begins.
  uint64_t offset() const { return offset_; }
  /// Where the last whole, valid record ends: once next() returned nothing, where the records
  /// end.
  uint64_t valid_bytes() const { return pos_; }
  tail end() const { return end_; }
  /// What was found at valid_bytes() when end() is not clean.
  const std::string& problem() const { return problem_; }
  /// The size of the file (reading on to its end when the records ended before it).
  uint64_t file_size();

private:
  /// Bytes from the record start that are at hand, at most `n`: reads on until there are `n`
  /// or the file ends.
  size_t at_hand(size_t n);
  /// Whether every byte from `at` to the end of the file is zero.
  bool zeros_from(uint64_t at);
  std::nullopt_t stop(tail t, std::string why);

  fetch_fn fetch_;
  zeros after_;
  size_t chunk_;
  std::string buf_;      // the window's bytes when the file is read in chunks
  std::string_view win_; // bytes of the file from win_at_
  uint64_t win_at_ = 0;
  bool eof_ = false;                // the window reaches the end of the file
  uint64_t pos_ = 0;                // where the next record begins
  uint64_t offset_ = 0;             // where the record returned last begins
  uint64_t zero_from_ = UINT64_MAX; // every byte from here on is zero, when known
  uint64_t size_ = UINT64_MAX;      // the file's size, when known
  bool done_ = false;
  tail end_ = tail::clean;
  std::string problem_;
};

/// Reads the records of `file` until the end or the first bad one.
scan_result scan(std::string_view file, zeros after = zeros::torn);

} // namespace cafraft::wal
