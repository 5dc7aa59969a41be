#include <cafraft/actors/storage.hpp>

#include <exception>
#include <optional>
#include <utility>

#include <caf/all.hpp>

#include <array>

#include <cafraft/actors/guards.hpp>
#include <cafraft/actors/inspect.hpp>
#include <cafraft/messages/api.hpp>
#include <cafraft/messages/local.hpp>
#include <cafraft/runtime/canary.hpp>
#include <cafraft/runtime/durable_storage.hpp>

namespace cafraft {

namespace {

// Upper bounds (µs) of the write-latency histogram that inspection shows.
constexpr std::array<int64_t, 10> write_buckets{100,  250,   500,   1000,  2500,
                                                5000, 10000, 25000, 50000, 100000};

struct storage_state {
  std::shared_ptr<log_storage> store;
  // Batches waiting for the next group commit, with what to send and the promises to keep
  // (those of requests) once it is durable.
  std::vector<persist_batch> waiting;
  std::vector<after_write> after;
  std::vector<std::optional<caf::response_promise>> promises;
  std::shared_ptr<persist_counts> counts;
  bool flush_scheduled = false;
  // Inspection: counted per message and per group commit, timed per write (fsync included).
  uint64_t group_commits = 0;
  uint64_t batches_written = 0;
  uint64_t last_index_written = 0;
  int64_t last_write_us = 0;
  int64_t max_write_us = 0;
  int64_t sum_write_us = 0;
  std::array<uint64_t, write_buckets.size()> write_le{}; // writes at or below each bound
  static inline const char* name = "cafraft.storage";
};

using storage_ptr = inspected<storage_state>*;

caf::error failure(const std::exception& ex) {
  auto code = dynamic_cast<const storage_full*>(&ex) ? errc::disk_full : errc::storage_failed;
  return make_error(code, ex.what());
}

/// Writes every batch waiting, as one group commit. Returns false when storage failed (the
/// actor is quitting).
bool commit_group(storage_ptr self) {
  auto& st = self->state;
  st.flush_scheduled = false;
  if (st.waiting.empty())
    return true;
  std::vector<persist_batch> batches;
  std::vector<after_write> after;
  std::vector<std::optional<caf::response_promise>> promises;
  batches.swap(st.waiting);
  after.swap(st.after);
  promises.swap(st.promises);
  for (auto& b : batches)
    if (!b.entries.empty())
      st.last_index_written = b.entries.back().index();
  auto n = batches.size();
  if (CAFRAFT_CANARY("storage_sends_before_write")) // what waits for the write overtakes it
    for (auto& a : after)
      for (auto& [to, msg] : std::exchange(a.sends, {}))
        self->send(to, std::move(msg));
  auto t0 = std::chrono::steady_clock::now();
  try {
    st.store->write(std::move(batches));
    auto us =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    st.last_write_us = us;
    st.max_write_us = std::max(st.max_write_us, us);
    st.sum_write_us += us;
    for (size_t b = 0; b < write_buckets.size(); ++b)
      if (us <= write_buckets[b])
        ++st.write_le[b];
    ++st.group_commits;
    st.batches_written += n;
  } catch (const std::exception& ex) {
    auto err = failure(ex);
    for (auto& rp : promises)
      if (rp)
        rp->deliver(err);
    self->quit(err);
    return false;
  }
  // Durable: what waited for each batch goes out, in order, and its requester hears of it.
  for (size_t i = 0; i < n; ++i) {
    for (auto& [to, msg] : after[i].sends)
      self->send(to, std::move(msg));
    if (promises[i])
      promises[i]->deliver(caf::message{});
  }
  // Counted once sent: a role that sees nothing waiting may send at once without overtaking.
  st.counts->completed.fetch_add(n, std::memory_order_release);
  return true;
}

/// Runs `f` (a snapshot operation) after every write asked for before it, and answers with
/// its result; a failure stops storage like a failed write.
template <class F> caf::message in_order(storage_ptr self, F f) {
  if (!commit_group(self))
    return caf::make_message(caf::error{self->fail_state()});
  try {
    return f();
  } catch (const std::exception& ex) {
    auto err = failure(ex);
    self->quit(err);
    return caf::make_message(err);
  }
}

caf::behavior storage_impl(storage_ptr self, std::shared_ptr<log_storage> store,
                           std::shared_ptr<persist_counts> counts) {
  install_guards(self);
  self->state.store = std::move(store);
  self->state.counts = std::move(counts);
  return {
      [self](persist_atom, persist_batch& batch, after_write& after) {
        auto& st = self->state;
        st.waiting.push_back(std::move(batch));
        st.after.push_back(std::move(after));
        if (self->current_mailbox_element()->mid.is_request())
          st.promises.emplace_back(self->make_response_promise());
        else
          st.promises.emplace_back();
        // Nothing else waits: written now. Otherwise the flush message queues behind every
        // batch already in the mailbox, so that they all share one write.
        if (st.flush_scheduled)
          return;
        if (self->mailbox().empty()) {
          commit_group(self);
          return;
        }
        st.flush_scheduled = true;
        self->send(self, flush_atom::value);
      },
      [self](flush_atom) { commit_group(self); },
      [self](inspect_atom) {
        auto& st = self->state;
        std::vector<std::pair<std::string, std::string>> fields{
            {"last_index_written", std::to_string(st.last_index_written)},
            {"group_commits", std::to_string(st.group_commits)},
            {"batches_written", std::to_string(st.batches_written)},
            {"waiting_batches", std::to_string(st.waiting.size())},
            {"last_write_us", std::to_string(st.last_write_us)},
            {"max_write_us", std::to_string(st.max_write_us)},
            {"sum_write_us", std::to_string(st.sum_write_us)}};
        // Cumulative histogram of write (fsync included) latency: writes at or below each bound.
        for (size_t b = 0; b < write_buckets.size(); ++b)
          fields.emplace_back("write_us_le_" + std::to_string(write_buckets[b]),
                              std::to_string(st.write_le[b]));
        for (auto& f : st.store->describe())
          fields.push_back(f);
        return make_inspection(self, "storage", std::move(fields));
      },
      [self](snapshot_atom, const pb::SnapshotMeta& meta) {
        return in_order(self, [&] {
          self->state.store->save_begin(meta);
          return caf::make_message(true);
        });
      },
      [self](snapshot_atom, const std::string& chunk) {
        return in_order(self, [&] {
          self->state.store->save_append(chunk);
          return caf::make_message(true);
        });
      },
      [self](snapshot_atom) {
        return in_order(self, [&] { return caf::make_message(self->state.store->save_finish()); });
      },
      [self](restore_atom) {
        return in_order(self, [&] {
          std::shared_ptr<snapshot_source> in = self->state.store->open_snapshot();
          if (!in)
            return caf::make_message(make_error(errc::invalid_request, "no snapshot"));
          pb::SnapshotMeta meta;
          std::string none;
          self->state.store->read_snapshot(0, 0, meta, none);
          return caf::make_message(std::move(meta), std::move(in));
        });
      },
      [self](snapshot_read_atom, uint64_t offset, uint64_t max) {
        return in_order(self, [&] {
          pb::SnapshotMeta meta;
          std::string data;
          if (!self->state.store->read_snapshot(offset, max, meta, data))
            return caf::make_message(make_error(errc::invalid_request, "no snapshot"));
          return caf::make_message(std::move(meta), std::move(data));
        });
      },
      [self](snapshot_chunk_atom, const pb::InstallSnapshot& chunk) {
        return in_order(self, [&] {
          bool complete = false;
          auto next = self->state.store->receive_chunk(chunk, complete);
          return caf::make_message(next, complete);
        });
      },
  };
}

} // namespace

caf::actor spawn_storage(caf::local_actor* node, std::shared_ptr<log_storage> store, bool detached,
                         std::shared_ptr<persist_counts> counts) {
  if (detached)
    return node->spawn<caf::linked + caf::detached>(storage_impl, std::move(store),
                                                    std::move(counts));
  return node->spawn<caf::linked>(storage_impl, std::move(store), std::move(counts));
}

} // namespace cafraft
