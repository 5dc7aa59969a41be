#include <cafraft/runtime/storage.hpp>

#include <stdexcept>

#include <cafraft/runtime/crc32c.hpp>

namespace cafraft {

namespace {

bool same_snapshot(const pb::SnapshotMeta& a, const pb::SnapshotMeta& b) {
  return a.index() == b.index() && a.term() == b.term() && a.size() == b.size() &&
         a.crc32c() == b.crc32c();
}

// No log reaches this index: a snapshot through it is forged or damaged, and installed, the log
// after it began at an index that wrapped around (the next start refused the data directory;
// fuzz tier).
constexpr uint64_t max_snapshot_index = uint64_t{1} << 62;

} // namespace

log_storage::~log_storage() = default;

uint64_t log_storage::receive_chunk(const pb::InstallSnapshot& chunk, bool& complete) {
  auto& meta = chunk.meta();
  complete = false;
  if (meta.index() > max_snapshot_index)
    return 0;                                         // never installed
  if (received_ && same_snapshot(*received_, meta)) { // a duplicate after the last chunk
    complete = true;
    return meta.size();
  }
  if (!incoming_ || !same_snapshot(*incoming_, meta)) {
    if (chunk.offset() != 0)
      return 0; // a chunk of a transfer we do not hold (lost, or from before a restart)
    incoming_begin(meta);
    incoming_ = meta;
    incoming_bytes_ = 0;
    incoming_crc_ = 0;
    received_.reset();
  }
  if (chunk.offset() != incoming_bytes_)
    return incoming_bytes_; // lost or duplicated chunk: resume where we are
  if (chunk.data().size() > meta.size() - incoming_bytes_) {
    incoming_.reset(); // more data than the snapshot has: start over
    return 0;
  }
  incoming_append(chunk.data());
  incoming_bytes_ += chunk.data().size();
  incoming_crc_ = crc32c(chunk.data(), incoming_crc_);
  if (incoming_bytes_ < meta.size())
    return incoming_bytes_;
  if (!checksum_ok(incoming_crc_, meta.crc32c())) {
    incoming_.reset(); // damaged in transit: start over
    return 0;
  }
  incoming_finish();
  received_ = meta;
  complete = true;
  return incoming_bytes_;
}

void log_storage::incoming_clear() {
  incoming_.reset();
  received_.reset();
  incoming_bytes_ = 0;
}

recovered_state memory_storage::load() {
  std::lock_guard<std::mutex> guard{mtx_};
  return data_;
}

void memory_storage::write(std::vector<persist_batch> batches) {
  std::lock_guard<std::mutex> guard{mtx_};
  ++writes_;
  for (auto& batch : batches)
    apply(batch);
}

void memory_storage::apply(persist_batch& batch) {
  if (batch.hard_state)
    data_.hard_state = *batch.hard_state;
  if (batch.snapshot) {
    if (!incoming_complete() || !same_snapshot(*incoming_complete(), *batch.snapshot))
      throw std::runtime_error("memory_storage: install of a snapshot that was not received");
    data_.snapshot = *batch.snapshot;
    data_.snapshot_data = std::move(incoming_);
    incoming_.clear();
    incoming_clear();
    if (batch.reset_log)
      data_.log.clear();
    drop_covered_entries();
  }
  uint64_t base = data_.snapshot ? data_.snapshot->index() : 0;
  if (batch.truncate_from > base && batch.truncate_from <= base + data_.log.size())
    data_.log.resize(batch.truncate_from - base - 1);
  for (auto& e : batch.entries) {
    if (e.index() != base + data_.log.size() + 1)
      throw std::runtime_error("memory_storage: append of index " + std::to_string(e.index()) +
                               " after " + std::to_string(base + data_.log.size()));
    data_.log.push_back(std::move(e));
  }
}

void memory_storage::drop_covered_entries() {
  auto base = data_.snapshot->index();
  auto& log = data_.log;
  size_t n = 0;
  while (n < log.size() && log[n].index() <= base)
    ++n;
  log.erase(log.begin(), log.begin() + static_cast<std::ptrdiff_t>(n));
  if (!log.empty() && log.front().index() != base + 1)
    log.clear(); // a log that ended before the snapshot: it starts over after it
}

void memory_storage::save_snapshot(const pb::SnapshotMeta& meta, std::string_view data) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (data_.snapshot && meta.index() <= data_.snapshot->index())
    return;
  data_.snapshot = meta;
  data_.snapshot_data = std::string{data};
  drop_covered_entries();
}

bool memory_storage::read_snapshot(uint64_t offset, size_t max, pb::SnapshotMeta& meta,
                                   std::string& data) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (!data_.snapshot)
    return false;
  meta = *data_.snapshot;
  data = offset < data_.snapshot_data.size() ? data_.snapshot_data.substr(offset, max) : "";
  return true;
}

void memory_storage::incoming_begin(const pb::SnapshotMeta&) {
  std::lock_guard<std::mutex> guard{mtx_};
  incoming_.clear();
}

void memory_storage::incoming_append(std::string_view data) {
  std::lock_guard<std::mutex> guard{mtx_};
  incoming_.append(data);
}

uint64_t memory_storage::writes() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return writes_;
}

} // namespace cafraft
