#include <cafraft/runtime/storage.hpp>

#include <algorithm>
#include <stdexcept>
#include <utility>

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

void log_storage::save_begin(const pb::SnapshotMeta& meta) {
  saving_ = meta;
  saving_->set_size(0);
  saving_->set_crc32c(0);
  saving_crc_ = 0;
  saving_bytes_ = 0;
  saving_begin(*saving_);
}

void log_storage::save_append(std::string_view data) {
  if (!saving_)
    throw std::runtime_error("a snapshot chunk with no snapshot being saved");
  saving_append(data);
  saving_bytes_ += data.size();
  saving_crc_ = crc32c(data, saving_crc_);
}

pb::SnapshotMeta log_storage::save_finish() {
  if (!saving_)
    throw std::runtime_error("the end of a snapshot with no snapshot being saved");
  auto meta = std::move(*saving_);
  saving_.reset();
  meta.set_size(saving_bytes_);
  meta.set_crc32c(saving_crc_);
  saving_finish(meta);
  return meta;
}

void log_storage::save_snapshot(const pb::SnapshotMeta& meta, std::string_view data) {
  save_begin(meta);
  save_append(data);
  save_finish();
}

std::string read_snapshot_data(log_storage& store) {
  auto in = store.open_snapshot();
  return in ? read_all(*in) : std::string{};
}

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
    snapshot_data_ = std::make_shared<const std::string>(std::move(incoming_));
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

void memory_storage::saving_begin(const pb::SnapshotMeta&) {
  std::lock_guard<std::mutex> guard{mtx_};
  saving_.clear();
}

void memory_storage::saving_append(std::string_view data) {
  std::lock_guard<std::mutex> guard{mtx_};
  saving_.append(data);
}

void memory_storage::saving_finish(const pb::SnapshotMeta& meta) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto data = std::exchange(saving_, {});
  if (data_.snapshot && meta.index() <= data_.snapshot->index())
    return;
  data_.snapshot = meta;
  snapshot_data_ = std::make_shared<const std::string>(std::move(data));
  drop_covered_entries();
}

namespace {

/// Reads a snapshot's data that stays in memory while it is read.
class shared_source : public snapshot_source {
public:
  explicit shared_source(std::shared_ptr<const std::string> data) : data_(std::move(data)) {}
  size_t read(char* buf, size_t n) override {
    n = std::min<size_t>(n, data_->size() - pos_);
    data_->copy(buf, n, pos_);
    pos_ += n;
    return n;
  }
  uint64_t size() const override { return data_->size(); }

private:
  std::shared_ptr<const std::string> data_;
  size_t pos_ = 0;
};

} // namespace

std::unique_ptr<snapshot_source> memory_storage::open_snapshot() {
  std::lock_guard<std::mutex> guard{mtx_};
  if (!data_.snapshot)
    return nullptr;
  return std::make_unique<shared_source>(snapshot_data_);
}

bool memory_storage::read_snapshot(uint64_t offset, size_t max, pb::SnapshotMeta& meta,
                                   std::string& data) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (!data_.snapshot)
    return false;
  meta = *data_.snapshot;
  data = offset < snapshot_data_->size() ? snapshot_data_->substr(offset, max) : "";
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
