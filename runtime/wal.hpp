// Framing of the records in WAL segments and in the small files of a data directory
// (docs/storage.md). A frame is
//   u32 length | u32 CRC32C of the length bytes | u32 CRC32C of the payload | payload
// in little-endian order. The header has its own checksum so that a damaged length is told
// apart from a record that a crash cut short.
#pragma once

#include <cstdint>
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

/// Reads the records of `file` until the end or the first bad one.
scan_result scan(std::string_view file, zeros after = zeros::torn);

} // namespace cafraft::wal
