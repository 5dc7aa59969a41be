#include "runtime/storage.hpp"

#include <stdexcept>

namespace cafraft {

log_storage::~log_storage() = default;

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
  if (batch.truncate_from > 0 && batch.truncate_from <= data_.log.size())
    data_.log.resize(batch.truncate_from - 1);
  for (auto& e : batch.entries) {
    if (e.index() != data_.log.size() + 1)
      throw std::runtime_error("memory_storage: append of index " + std::to_string(e.index()) +
                               " after " + std::to_string(data_.log.size()));
    data_.log.push_back(std::move(e));
  }
}

uint64_t memory_storage::writes() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return writes_;
}

} // namespace cafraft
