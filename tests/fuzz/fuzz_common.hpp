// What the fuzz targets (tests/fuzz/targets/*.cpp) and the seed writer (seeds.cpp) share: a
// reader of the fuzz input's simple container format, a check that aborts, and a data directory
// on the in-memory disk of the tests with durable_storage over it.
//
// Input format. Targets that need more than one byte string take their parts from the input
// in order: u8/u16/u32/u64 little-endian, and blobs (a u16 length, then that many bytes; cut
// short at the end of the input). Running out of input yields zeros and empty blobs, so that
// every byte string is a valid input.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>

#include "tests/crash_disk.hpp"
#include <cafraft/messages/storage.pb.h>
#include <cafraft/runtime/crc32c.hpp>
#include <cafraft/runtime/durable_storage.hpp>
#include <cafraft/runtime/logging.hpp>
#include <cafraft/runtime/wal.hpp>

namespace cafraft::fuzz {

/// Protobuf logs every string field with invalid UTF-8 that it refuses to parse; the fuzzer
/// makes millions of them.
inline const bool protobuf_quiet = (google::protobuf::SetLogHandler(nullptr), true);

/// A failed check: a bug, reported as a crash so that libFuzzer keeps the input.
#define FUZZ_CHECK(cond, ...)                                                                      \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);         \
      std::fprintf(stderr, "  " __VA_ARGS__);                                                      \
      std::fprintf(stderr, "\n");                                                                  \
      std::abort();                                                                                \
    }                                                                                              \
  } while (false)

class input {
public:
  input(const uint8_t* data, size_t size) : data_(reinterpret_cast<const char*>(data), size) {}
  explicit input(std::string_view data) : data_(data) {}

  bool empty() const { return pos_ >= data_.size(); }
  size_t left() const { return data_.size() - pos_; }

  uint64_t uint(int bytes) {
    uint64_t x = 0;
    for (int i = 0; i < bytes && pos_ < data_.size(); ++i)
      x |= uint64_t{static_cast<unsigned char>(data_[pos_++])} << (8 * i);
    return x;
  }
  uint8_t u8() { return static_cast<uint8_t>(uint(1)); }
  uint16_t u16() { return static_cast<uint16_t>(uint(2)); }
  uint32_t u32() { return static_cast<uint32_t>(uint(4)); }
  uint64_t u64() { return uint(8); }
  bool flag() { return (u8() & 1) != 0; }

  std::string_view bytes(size_t n) {
    n = std::min(n, left());
    auto out = data_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  std::string_view blob() { return bytes(u16()); }
  std::string_view rest() { return bytes(left()); }

private:
  std::string_view data_;
  size_t pos_ = 0;
};

/// Writes the parts of an input in the format `input` reads (the seed writer, regressions).
class output {
public:
  output& uint(uint64_t x, int bytes) {
    for (int i = 0; i < bytes; ++i)
      out_.push_back(static_cast<char>((x >> (8 * i)) & 0xFF));
    return *this;
  }
  output& u8(uint8_t x) { return uint(x, 1); }
  output& u16(uint16_t x) { return uint(x, 2); }
  output& u32(uint32_t x) { return uint(x, 4); }
  output& u64(uint64_t x) { return uint(x, 8); }
  output& raw(std::string_view s) {
    out_.append(s);
    return *this;
  }
  output& blob(std::string_view s) {
    u16(static_cast<uint16_t>(s.size()));
    return raw(s.substr(0, 0xFFFF));
  }
  const std::string& str() const { return out_; }

private:
  std::string out_;
};

/// spdlog's logger for the storage under test, switched off (warnings about damage are what
/// the fuzzer provokes all the time).
inline const std::string& quiet_logger() {
  static const std::string name = [] {
    get_logger("fuzz")->set_level(spdlog::level::off);
    return std::string{"fuzz"};
  }();
  return name;
}

// -- a data directory ------------------------------------------------------------------------

constexpr const char* dir = "/data";
constexpr const char* node_id = "n1";
constexpr const char* cluster_id = "c1";

inline std::string framed(const google::protobuf::MessageLite& m) {
  return wal::frame(m.SerializeAsString());
}

inline std::string manifest_file(const std::string& node = node_id,
                                 const std::string& cluster = cluster_id) {
  pb::Manifest m;
  m.set_format(1);
  m.set_node_id(node);
  m.set_cluster_id(cluster);
  return framed(m);
}

/// HARDSTATE with one slot (the first) written, as durable_storage writes it.
inline std::string hard_state_file(uint64_t term, const std::string& vote, uint64_t seq = 1) {
  pb::HardStateSlot s;
  s.set_sequence(seq);
  s.mutable_hard_state()->set_term(term);
  s.mutable_hard_state()->set_voted_for(vote);
  auto slot = framed(s);
  return (seq % 2 == 0 ? std::string(4096, '\0') : std::string{}) + slot;
}

inline constexpr uint32_t seal = 0xC35AA53Cu; // durable_storage's record seal

inline pb::LogEntry entry(uint64_t index, uint64_t term, std::string data = "x") {
  pb::LogEntry e;
  e.set_index(index);
  e.set_term(term);
  e.set_type(pb::ENTRY_COMMAND);
  e.set_data(std::move(data));
  return e;
}

/// A segment: its header record, then one record per group of entries.
inline std::string segment_file(uint64_t seq, uint64_t first_index,
                                const std::vector<std::vector<pb::LogEntry>>& records,
                                bool restart = false, uint64_t truncate_first = 0) {
  pb::WalRecord h;
  h.set_segment(seq);
  h.set_first_index(first_index);
  h.set_restart(restart);
  h.set_seal(seal);
  auto out = framed(h);
  bool first = true;
  for (auto& entries : records) {
    pb::WalRecord r;
    if (first && truncate_first > 0)
      r.set_truncate_from(truncate_first);
    first = false;
    for (auto& e : entries)
      *r.add_entries() = e;
    r.set_seal(seal);
    out += framed(r);
  }
  return out;
}

inline std::string segment_name(uint64_t seq) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "wal-%016llx.log", static_cast<unsigned long long>(seq));
  return buf;
}

inline std::string snapshot_name(uint64_t index) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "snap-%016llx.snap", static_cast<unsigned long long>(index));
  return buf;
}

/// A snapshot file: its header record, then the data.
inline std::string snapshot_file(const pb::SnapshotMeta& meta, std::string_view data) {
  pb::SnapshotHeader h;
  h.set_format(1);
  *h.mutable_meta() = meta;
  return framed(h) + std::string{data};
}

inline std::shared_ptr<test::crash_disk> new_disk() {
  auto fs = std::make_shared<test::crash_disk>();
  fs->make_dirs(dir);
  return fs;
}

inline void put(test::crash_disk& fs, const std::string& name, std::string content) {
  fs.poke(std::string{dir} + "/" + name, std::move(content));
}

/// Options that the input may vary: how segments are read and what damage does.
struct load_options {
  size_t read_chunk = 1u << 20;
  bool discard_corrupt_log = false;
  uint64_t preallocate = 0;
  uint64_t segment_bytes = 64ull << 20;
};

inline load_options read_load_options(input& in) {
  load_options o;
  auto b = in.u8();
  static constexpr size_t chunks[] = {1u << 20, 12, 13, 16, 64, 100, 512, 4096};
  o.read_chunk = chunks[b & 7];
  o.discard_corrupt_log = (b & 8) != 0;
  o.preallocate = (b & 16) != 0 ? 4096 : 0;
  o.segment_bytes = (b & 32) != 0 ? 4096 : 64ull << 20;
  return o;
}

inline durable_options storage_options(std::shared_ptr<test::crash_disk> fs,
                                       const load_options& lo) {
  durable_options o;
  o.dir = dir;
  o.node_id = node_id;
  o.cluster_id = cluster_id;
  o.fs = std::move(fs);
  o.logger_name = quiet_logger();
  o.read_chunk_bytes = lo.read_chunk;
  o.discard_corrupt_log = lo.discard_corrupt_log;
  o.preallocate_bytes = lo.preallocate;
  o.segment_bytes = lo.segment_bytes;
  return o;
}

/// What a load found, in a form that two loads can be compared by.
struct loaded {
  std::string hard_state;
  std::string snapshot; // the meta, serialized; empty when none
  std::string snapshot_data;
  std::vector<std::string> log;
  uint64_t first = 0; // index of log[0]
};

inline bool operator==(const loaded& a, const loaded& b) {
  return a.hard_state == b.hard_state && a.snapshot == b.snapshot &&
         a.snapshot_data == b.snapshot_data && a.log == b.log && a.first == b.first;
}

/// The recovered state of `store` must be usable by a node: the log holds the entries right
/// after the snapshot, in order, and the snapshot's data reads back whole.
inline loaded check_recovered(const recovered_state& r, log_storage& store) {
  loaded out;
  out.hard_state = r.hard_state.SerializeAsString();
  uint64_t base = r.snapshot ? r.snapshot->index() : 0;
  if (r.snapshot) {
    out.snapshot = r.snapshot->SerializeAsString();
    out.snapshot_data = read_snapshot_data(store);
    FUZZ_CHECK(out.snapshot_data.size() == r.snapshot->size(),
               "snapshot data of %zu bytes, not %llu", out.snapshot_data.size(),
               static_cast<unsigned long long>(r.snapshot->size()));
  }
  out.first = base + 1;
  for (size_t i = 0; i < r.log.size(); ++i) {
    FUZZ_CHECK(r.log[i].index() == base + i + 1, "log[%zu] has index %llu after base %llu", i,
               static_cast<unsigned long long>(r.log[i].index()),
               static_cast<unsigned long long>(base));
    out.log.push_back(r.log[i].SerializeAsString());
  }
  return out;
}

/// Whether the directory holds a count (hard state sequence, segment number, log or snapshot
/// index) beyond 2^62, which no writes make: checksums are off in this build and the fuzzer
/// makes them, in production only damage that passes a CRC32C could. Such a directory must
/// still load or be refused without harm, but a count there wraps around at the next writes,
/// so the checks that it loads again after a write do not apply.
inline bool counts_no_writes_make(test::crash_disk& fs) {
  constexpr uint64_t top = uint64_t{1} << 62;
  auto big_hex = [](const std::string& name, size_t at) {
    if (name.size() < at + 16 || name[at] < '4')
      return false;
    for (size_t i = at; i < at + 16; ++i)
      if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
        return false;
    return true;
  };
  for (auto& name : fs.list(dir)) {
    auto bytes = fs.read(std::string{dir} + "/" + name);
    if (name == "HARDSTATE") {
      for (size_t slot = 0; slot < 2 && bytes.size() > slot * 4096; ++slot) {
        auto r = wal::scan(std::string_view{bytes}.substr(slot * 4096, 4096));
        pb::HardStateSlot s;
        for (auto p : r.payloads)
          if (s.ParseFromArray(p.data(), static_cast<int>(p.size())) && s.sequence() > top)
            return true;
      }
    } else if (name.compare(0, 4, "wal-") == 0) {
      if (big_hex(name, 4))
        return true;
      for (auto p : wal::scan(bytes, wal::zeros::reserved).payloads) {
        pb::WalRecord rec;
        if (!rec.ParseFromArray(p.data(), static_cast<int>(p.size())))
          continue;
        if (rec.segment() > top || rec.first_index() > top || rec.truncate_from() > top)
          return true;
        for (auto& e : rec.entries())
          if (e.index() > top)
            return true;
      }
    } else if (name.compare(0, 5, "snap-") == 0) {
      if (big_hex(name, 5))
        return true;
      auto r = wal::scan(bytes);
      pb::SnapshotHeader h;
      if (!r.payloads.empty() &&
          h.ParseFromArray(r.payloads[0].data(), static_cast<int>(r.payloads[0].size())) &&
          h.meta().index() > top)
        return true;
    }
  }
  return false;
}

/// Opens the directory: load() either succeeds or throws storage_error (anything else escapes
/// and is a crash). A directory that loaded opens again, with the same state, and takes a
/// write of the hard state and the next entry, which a third load finds.
inline void load_and_check(const std::shared_ptr<test::crash_disk>& fs, const load_options& lo) {
  if (counts_no_writes_make(*fs)) {
    try {
      durable_storage st{storage_options(fs, lo)};
      check_recovered(st.load(), st);
    } catch (const storage_error&) {
    }
    return;
  }
  std::optional<loaded> first;
  uint64_t last = 0;
  try {
    durable_storage st{storage_options(fs, lo)};
    auto r = st.load();
    first = check_recovered(r, st);
    last = (r.snapshot ? r.snapshot->index() : 0) + r.log.size();
  } catch (const storage_error&) {
    return; // the documented refusal
  }
  // The first load may have repaired what a crash left (a torn tail, an empty segment): the
  // second finds the same state, and never refuses.
  {
    durable_storage st{storage_options(fs, lo)};
    recovered_state r;
    try {
      r = st.load();
    } catch (const storage_error& e) {
      FUZZ_CHECK(false, "a directory that loaded once is refused the second time: %s", e.what());
    }
    auto second = check_recovered(r, st);
    FUZZ_CHECK(second == *first, "a second load found another state (log %zu -> %zu entries)",
               first->log.size(), second.log.size());
    persist_batch b;
    pb::HardState hs = r.hard_state;
    hs.set_term(hs.term() + 1);
    hs.set_voted_for("n9");
    b.hard_state = hs;
    b.entries.push_back(entry(last + 1, 1, "next"));
    std::vector<persist_batch> batches;
    batches.push_back(std::move(b));
    try {
      st.write(std::move(batches));
    } catch (const storage_error& e) {
      FUZZ_CHECK(false, "the write after a load failed: %s", e.what());
    }
  }
  durable_storage st{storage_options(fs, lo)};
  recovered_state r;
  try {
    r = st.load();
  } catch (const storage_error& e) {
    FUZZ_CHECK(false, "the directory is refused after a write: %s", e.what());
  }
  check_recovered(r, st);
  FUZZ_CHECK(!r.log.empty() && r.log.back().index() == last + 1 && r.log.back().data() == "next",
             "the entry written after the load is lost (last %llu)",
             static_cast<unsigned long long>(last));
  FUZZ_CHECK(r.hard_state.voted_for() == "n9", "the hard state written after the load is lost");
}

} // namespace cafraft::fuzz
