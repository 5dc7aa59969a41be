#include <cafraft/actors/state_machine.hpp>

#include <deque>
#include <functional>
#include <map>
#include <utility>
#include <vector>

#include <caf/all.hpp>

#include <cafraft/actors/guards.hpp>
#include <cafraft/actors/inspect.hpp>
#include <cafraft/messages/api.hpp>
#include <cafraft/messages/local.hpp>
#include <cafraft/runtime/canary.hpp>
#include <cafraft/runtime/crc32c.hpp>
#include <cafraft/runtime/rules.hpp>
#include <cafraft/runtime/sessions.hpp>

namespace cafraft {

namespace {

/// A watch (docs/watches.md): the changes of [key, range_end) from `from` on, queued for the
/// watcher, one WatchBatch out at a time.
struct watch {
  caf::actor who;
  std::string key, range_end; // range_end empty: `key` alone; "\0": no end
  uint64_t from = 0;          // the first index to deliver
  std::deque<pb::WatchEvent> queue;
  bool in_flight = false;
  uint64_t delivered = 0; // the last index in a batch sent
  size_t backlog = 0;     // the changes from the history it started with: above the buffer
  bool matches(const std::string& k) const {
    if (range_end.empty())
      return k == key;
    return k >= key && (range_end == std::string(1, '\0') || k < range_end);
  }
};

struct waiting_query {
  std::string query;
  bool kv;
  caf::response_promise rp;
};

struct sm_state {
  std::shared_ptr<const node_config> cfg;
  caf::actor node;
  caf::actor storage;
  std::shared_ptr<state_machine> sm;
  session_table sessions; // client sessions (docs/sessions.md), in every snapshot
  uint64_t applied = 0;
  uint64_t applied_term = 0;
  uint32_t cluster_level = 0; // the feature level in force at `applied` (0: the base level)
  configuration config;       // the members as of `applied`, for the snapshots' meta
  // Applied since the last snapshot, against the limits in node_config.
  uint64_t entries_since = 0;
  uint64_t bytes_since = 0;
  bool saving = false; // a snapshot is on its way to storage
  // Backups (pb::SnapshotNowRequest): who waits for a snapshot prepared after they asked, and
  // who waits for the one on its way.
  std::vector<caf::response_promise> now_waiting;
  std::vector<caf::response_promise> on_saved;
  std::multimap<uint64_t, waiting_query> waiting; // by min_index
  // Watches: the KV store's recent changes (those after `history_floor`), and the watches.
  bool kv = false;
  std::deque<pb::WatchEvent> history;
  uint64_t history_floor = 0; // changes at or below this index are not in `history`
  std::map<uint64_t, watch> watches;
  uint64_t next_watch = 0;
  static inline const char* name = "cafraft.state_machine";
};

using sm_ptr = inspected<sm_state>*;

/// Answers a read from the state as applied now: a pb::GetResponse for the KV store's
/// queries (`kv`), a pb::QueryResponse for a user's own.
void answer(sm_ptr self, caf::response_promise& rp, const std::string& query, bool kv) {
  auto& st = self->state;
  auto result = st.sm->query(query);
  if (!kv) {
    pb::QueryResponse resp;
    resp.set_answer(std::move(result));
    resp.set_applied_index(st.applied);
    rp.deliver(std::move(resp));
    return;
  }
  pb::GetResponse resp;
  if (!resp.ParseFromString(result)) {
    rp.deliver(make_error(errc::invalid_request, "the state machine is not a KV store"));
    return;
  }
  resp.set_applied_index(st.applied);
  rp.deliver(std::move(resp));
}

// -- watches ------------------------------------------------------------------------------------

constexpr int max_batch_events = 256;

void end_watch(sm_ptr self, uint64_t id, errc code, std::string detail, uint64_t last_index) {
  auto& st = self->state;
  auto i = st.watches.find(id);
  if (i == st.watches.end())
    return;
  pb::WatchBatch b;
  b.set_watch_id(id);
  b.set_error(static_cast<uint32_t>(code));
  b.set_detail(std::move(detail));
  b.set_last_index(last_index);
  self->send(i->second.who, std::move(b));
  st.watches.erase(i);
}

/// Sends the watcher its next batch, once it has answered the last.
void push_watch(sm_ptr self, uint64_t id) {
  auto& st = self->state;
  auto i = st.watches.find(id);
  if (i == st.watches.end() || i->second.in_flight || i->second.queue.empty())
    return;
  auto& w = i->second;
  pb::WatchBatch b;
  b.set_watch_id(id);
  while (!w.queue.empty() && b.events_size() < max_batch_events) {
    *b.add_events() = std::move(w.queue.front());
    w.queue.pop_front();
  }
  w.delivered = b.events(b.events_size() - 1).index();
  w.in_flight = true;
  auto release = [self, id] {
    auto j = self->state.watches.find(id);
    if (j == self->state.watches.end())
      return;
    j->second.in_flight = false;
    push_watch(self, id);
  };
  self->request(w.who, caf::infinite, std::move(b))
      .then([release] { release(); },
            [self, id](caf::error&) { self->state.watches.erase(id); }); // the watcher is gone
}

/// Queues `ev` for the watches it matches; a watch more than watch_buffer behind ends.
void offer(sm_ptr self, uint64_t id, watch& w, const pb::WatchEvent& ev) {
  if (ev.index() < w.from || !w.matches(ev.key()))
    return;
  if (w.queue.size() >= self->state.cfg->watch_buffer + w.backlog) {
    auto last = w.delivered;
    end_watch(self, id, errc::watch_overflow,
              "the watcher fell more than " + std::to_string(self->state.cfg->watch_buffer) +
                  " changes behind",
              last);
    return;
  }
  w.queue.push_back(ev);
}

/// The KV store changed `key` at `index` (`value`, or deleted): kept, and given to the watches.
void changed(sm_ptr self, uint64_t index, const std::string& key, const std::string* value) {
  auto& st = self->state;
  pb::WatchEvent ev;
  ev.set_index(index);
  ev.set_key(key);
  if (value)
    ev.set_value(*value);
  else
    ev.set_deleted(true);
  st.history.push_back(ev);
  while (st.history.size() > st.cfg->watch_history) {
    st.history_floor = st.history.front().index();
    st.history.pop_front();
  }
  for (auto i = st.watches.begin(); i != st.watches.end();) {
    auto id = i->first;
    ++i; // offer may end the watch
    offer(self, id, st.watches.at(id), ev);
    push_watch(self, id);
  }
}

/// The change a KV command made, from the command and its result.
void record_change(sm_ptr self, uint64_t index, const std::string& command,
                   const std::string& result) {
  if (!self->state.kv)
    return;
  pb::KvCommand cmd;
  pb::KvResult res;
  if (!cmd.ParseFromString(command) || !res.ParseFromString(result))
    return;
  if (cmd.has_put())
    changed(self, index, cmd.put().key(), &cmd.put().value());
  else if (cmd.has_cas() && !res.compare_failed())
    changed(self, index, cmd.cas().key(), &cmd.cas().value());
  else if (cmd.has_del() && res.existed())
    changed(self, index, cmd.del().key(), nullptr);
}

/// The state machine's apply of one command, and the change it made for the watches.
std::string apply_command(sm_ptr self, uint64_t index, const std::string& command) {
  auto result = self->state.sm->apply(index, command);
  record_change(self, index, command, result);
  return result;
}

pb::WatchStarted start_watch(sm_ptr self, pb::WatchRequest& req, caf::actor who,
                             caf::error& refused) {
  auto& st = self->state;
  pb::WatchStarted started;
  if (!st.kv) {
    refused = make_error(errc::invalid_request, "watches are for the built-in KV store");
    return started;
  }
  if (!who) {
    refused = make_error(errc::invalid_request, "a watch needs a watcher");
    return started;
  }
  auto from = req.from_index() == 0 ? st.applied + 1 : req.from_index();
  if (from <= st.history_floor) {
    refused = make_error(errc::compacted, "the changes from index " + std::to_string(from) +
                                              " on are gone (a snapshot replaced them): read "
                                              "the state, then watch from index " +
                                              std::to_string(st.history_floor + 1));
    return started;
  }
  auto id = ++st.next_watch;
  auto& w = st.watches[id];
  w.who = std::move(who);
  w.key = req.key();
  w.range_end = req.range_end();
  w.from = from;
  self->monitor(w.who);
  for (auto& ev : st.history) // what it asked for from before now: all of it, whatever the buffer
    if (ev.index() >= w.from && w.matches(ev.key()))
      w.queue.push_back(ev);
  w.backlog = w.queue.size();
  started.set_watch_id(id);
  started.set_applied_index(st.applied);
  return started;
}

void answer_waiting(sm_ptr self) {
  auto& st = self->state;
  while (!st.waiting.empty() && st.waiting.begin()->first <= st.applied) {
    auto q = std::move(st.waiting.begin()->second);
    st.waiting.erase(st.waiting.begin());
    answer(self, q.rp, q.query, q.kv);
  }
}

struct buffer : snapshot_sink {
  void write(std::string_view bytes) override { out.append(bytes); }
  std::string out;
};

/// Writes a snapshot the state machine prepared to storage, a chunk at a time, each chunk
/// once storage took the one before: off the apply path, with one piece and one chunk in
/// memory. Tells `sm` (snapshot_atom, the saved meta) when it is durable; a failure ends it with
/// the error, and the state machine (linked) and the node with it.
caf::behavior snapshot_writer_impl(caf::event_based_actor* self, caf::actor storage, caf::actor sm,
                                   pb::SnapshotMeta meta, std::shared_ptr<snapshot_writer> w,
                                   size_t chunk_bytes) {
  auto fail = [self](caf::error& e) { self->quit(std::move(e)); };
  auto finish = [self, storage, sm, fail] {
    self->request(storage, caf::infinite, snapshot_atom::value)
        .then(
            [self, sm](pb::SnapshotMeta& saved) {
              self->send(sm, snapshot_atom::value, std::move(saved));
              self->quit();
            },
            fail);
  };
  auto next = std::make_shared<std::function<void()>>();
  *next = [self, storage, w, chunk_bytes, fail, finish, weak = std::weak_ptr{next}] {
    buffer b;
    bool more = true;
    try {
      while (b.out.size() < chunk_bytes && (more = w->write_next(b))) {
      }
    } catch (const std::exception& ex) {
      self->quit(
          make_error(errc::storage_failed,
                     std::string{"the state machine cannot write its snapshot: "} + ex.what()));
      return;
    }
    if (b.out.empty()) {
      finish();
      return;
    }
    auto again = weak.lock();
    self->request(storage, caf::infinite, snapshot_atom::value, std::move(b.out))
        .then(
            [again, more, finish](bool) {
              if (more)
                (*again)();
              else
                finish();
            },
            fail);
  };
  self->request(storage, caf::infinite, snapshot_atom::value, std::move(meta))
      .then([next](bool) { (*next)(); }, fail);
  return {[](caf::unit_t) {}};
}

/// A snapshot's data: the session table, then what the state machine's writer writes.
class with_sessions : public snapshot_writer {
public:
  with_sessions(std::string sessions, std::shared_ptr<snapshot_writer> sm)
      : sessions_(std::move(sessions)), sm_(std::move(sm)) {}
  bool write_next(snapshot_sink& out) override {
    if (!sessions_.empty()) {
      out.write(sessions_);
      sessions_.clear();
      sessions_.shrink_to_fit();
      return true;
    }
    return sm_->write_next(out);
  }

private:
  std::string sessions_;
  std::shared_ptr<snapshot_writer> sm_;
};

/// The state machine's part of a snapshot's data: what follows the session table.
class after_sessions : public snapshot_source {
public:
  after_sessions(snapshot_source& in, uint64_t skipped) : in_(in), size_(in.size() - skipped) {}
  size_t read(char* buf, size_t n) override { return in_.read(buf, n); }
  uint64_t size() const override { return size_; }

private:
  snapshot_source& in_;
  uint64_t size_;
};

/// Prepares a snapshot of the state as applied now and starts its writer.
void start_snapshot(sm_ptr self) {
  auto& st = self->state;
  auto& cfg = *st.cfg;
  st.on_saved = std::move(st.now_waiting);
  st.now_waiting.clear();
  std::shared_ptr<snapshot_writer> writer;
  try {
    writer = st.sm->prepare_snapshot();
  } catch (const std::exception& ex) {
    self->quit(
        make_error(errc::storage_failed,
                   std::string{"the state machine cannot prepare a snapshot: "} + ex.what()));
    return;
  }
  if (CAFRAFT_CANARY("snapshot_written_on_apply_path")) { // applies wait for the whole state
    buffer all;
    while (writer->write_next(all)) {
    }
    writer = write_string(std::move(all.out));
  }
  pb::SnapshotMeta meta;
  if (!st.sessions.empty()) {
    auto table = st.sessions.encode();
    meta.set_sessions_size(table.size());
    writer = std::make_shared<with_sessions>(std::move(table), std::move(writer));
  }
  meta.set_index(st.applied);
  meta.set_term(st.applied_term);
  *meta.mutable_members() = st.config.to_proto().members();
  meta.set_cluster_level(st.cluster_level);
  st.entries_since = 0;
  st.bytes_since = 0;
  st.saving = true;
  // The writer runs in an actor of its own (on a thread of its own where storage has one)
  // while this one goes on applying.
  auto me = caf::actor_cast<caf::actor>(self);
  if (cfg.detached_storage)
    self->spawn<caf::linked + caf::detached>(snapshot_writer_impl, st.storage, me, std::move(meta),
                                             std::move(writer), cfg.snapshot_chunk_bytes);
  else
    self->spawn<caf::linked>(snapshot_writer_impl, st.storage, me, std::move(meta),
                             std::move(writer), cfg.snapshot_chunk_bytes);
}

void maybe_snapshot(sm_ptr self) {
  auto& st = self->state;
  auto& cfg = *st.cfg;
  bool due = (cfg.snapshot_entries > 0 && st.entries_since >= cfg.snapshot_entries) ||
             (cfg.snapshot_bytes > 0 && st.bytes_since >= cfg.snapshot_bytes);
  if (due && !st.saving)
    start_snapshot(self);
}

bool restore(sm_ptr self, const pb::SnapshotMeta& meta, snapshot_source& in) {
  auto& st = self->state;
  bool ok = false;
  std::string why = "malformed";
  session_table sessions;
  try {
    if (meta.sessions_size() > 0) {
      std::string table(meta.sessions_size(), '\0');
      ok = meta.sessions_size() <= in.size() && in.read_exact(table.data(), table.size()) &&
           sessions.decode(table);
      if (!ok)
        why = "its session table is malformed";
    } else {
      ok = true;
    }
    if (ok) {
      after_sessions rest{in, meta.sessions_size()};
      ok = st.sm->restore(rest);
    }
  } catch (const std::exception& ex) {
    ok = false;
    why = ex.what();
  }
  if (!ok) {
    // The data passed its checksum, so the state machine cannot read its own format.
    self->quit(make_error(errc::storage_failed, "the state machine cannot restore snapshot " +
                                                    std::to_string(meta.index()) + ": " + why));
    return false;
  }
  st.sessions = std::move(sessions);
  // The changes before the snapshot are gone: watches that miss them end, and the history
  // starts over after it.
  st.history.clear();
  st.history_floor = meta.index();
  for (auto i = st.watches.begin(); i != st.watches.end();) {
    auto id = (i++)->first;
    auto& w = st.watches.at(id);
    end_watch(self, id, errc::compacted,
              "a snapshot from the leader replaced the changes the watch was waiting for",
              std::max(w.delivered, w.from - 1));
  }
  st.applied = meta.index();
  st.applied_term = meta.term();
  st.cluster_level = std::max(st.cluster_level, meta.cluster_level());
  st.config = configuration::from_members(meta.members(), meta.index());
  st.entries_since = 0;
  st.bytes_since = 0;
  if (st.cfg->observer)
    st.cfg->observer->on_restore(st.cfg->id, st.applied);
  answer_waiting(self);
  return true;
}

caf::behavior sm_impl(sm_ptr self, std::shared_ptr<const node_config> cfg, caf::actor node,
                      caf::actor storage, std::shared_ptr<state_machine> sm,
                      std::optional<pb::SnapshotMeta> start,
                      std::shared_ptr<snapshot_source> start_data) {
  install_guards(self);
  self->state.cfg = std::move(cfg);
  self->state.node = std::move(node);
  self->state.storage = std::move(storage);
  self->state.sm = std::move(sm);
  self->state.kv = dynamic_cast<kv_store*>(self->state.sm.get()) != nullptr;
  self->set_down_handler([self](caf::down_msg& m) { // a watcher went away
    auto& ws = self->state.watches;
    for (auto i = ws.begin(); i != ws.end();)
      i = i->second.who.address() == m.source ? ws.erase(i) : std::next(i);
  });
  self->state.config.members = self->state.cfg->members;
  if (start && (!start_data || !restore(self, *start, *start_data)))
    return {};
  return {
      [self](apply_atom, const std::vector<pb::LogEntry>& entries) {
        auto& st = self->state;
        std::vector<std::string> results;
        results.reserve(entries.size());
        for (auto& e : entries) {
          if (e.index() <= st.applied) { // handed over twice across a role change
            results.emplace_back();
            continue;
          }
          if (e.index() != st.applied + 1) {
            // A gap would apply a different sequence than other nodes: stop the node.
            self->quit(make_error(errc::invalid_request, "apply gap: applied " +
                                                             std::to_string(st.applied) + ", got " +
                                                             std::to_string(e.index())));
            return results;
          }
          if (e.type() == pb::ENTRY_COMMAND)
            results.push_back(apply_command(self, e.index(), e.data()));
          else if (e.type() == pb::ENTRY_SESSION)
            results.push_back(st.sessions
                                  .apply(e.index(), e.data(),
                                         [&](const std::string& command) {
                                           return apply_command(self, e.index(), command);
                                         })
                                  .SerializeAsString());
          else
            results.emplace_back();
          st.applied = e.index();
          st.applied_term = e.term();
          if (auto c = rules::config_of(e))
            st.config = std::move(*c);
          st.cluster_level = std::max(st.cluster_level, rules::cluster_level_of(e));
          st.entries_since += 1;
          st.bytes_since += e.data().size();
          if (st.cfg->observer)
            st.cfg->observer->on_apply(st.cfg->id, e);
        }
        answer_waiting(self);
        maybe_snapshot(self);
        return results;
      },
      [self](snapshot_atom, pb::SnapshotMeta& saved) {
        auto& st = self->state;
        st.saving = false;
        for (auto& rp : std::exchange(st.on_saved, {}))
          rp.deliver(saved);
        self->send(st.node, compact_atom::value, std::move(saved));
        if (!st.now_waiting.empty())
          start_snapshot(self);
      },
      [self](snapshot_atom) {
        auto& st = self->state;
        auto rp = self->make_response_promise();
        if (st.applied == 0) {
          rp.deliver(make_error(errc::invalid_request, "nothing is applied yet"));
          return rp;
        }
        st.now_waiting.push_back(rp);
        if (!st.saving)
          start_snapshot(self);
        return rp;
      },
      [self](inspect_atom) {
        auto& st = self->state;
        return make_inspection(self, "state_machine",
                               {{"applied_index", std::to_string(st.applied)},
                                {"applied_term", std::to_string(st.applied_term)},
                                {"waiting_reads", std::to_string(st.waiting.size())},
                                {"sessions", std::to_string(st.sessions.size())},
                                {"watches", std::to_string(st.watches.size())},
                                {"watch_history", std::to_string(st.history.size())},
                                {"session_duplicates", std::to_string(st.sessions.duplicates())},
                                {"sessions_expired", std::to_string(st.sessions.expired())},
                                {"entries_since_snapshot", std::to_string(st.entries_since)},
                                {"snapshot_in_progress", st.saving ? "true" : "false"}});
      },
      [self](watch_atom, pb::WatchRequest& req, caf::actor& who) -> caf::result<pb::WatchStarted> {
        caf::error refused;
        auto started = start_watch(self, req, std::move(who), refused);
        if (refused)
          return refused;
        // The first batch goes after the answer: a watcher (or a connection that carries the
        // watch) learns the watch's id before its events.
        self->send(self, watch_atom::value, started.watch_id());
        return started;
      },
      [self](watch_atom, uint64_t id) { push_watch(self, id); },
      [self](query_atom, uint64_t min_index, std::string& query, bool kv) {
        auto& st = self->state;
        auto rp = self->make_response_promise();
        if (min_index <= st.applied || CAFRAFT_CANARY("read_before_apply"))
          answer(self, rp, query, kv);
        else if (st.waiting.size() >= st.cfg->max_pending_requests)
          rp.deliver(make_error(errc::overloaded, "too many reads wait for entries to apply"));
        else
          st.waiting.emplace(min_index, waiting_query{std::move(query), kv, rp});
        return rp;
      },
      [self](restore_atom, const pb::SnapshotMeta& meta) {
        if (meta.index() <= self->state.applied)
          return;
        // Nothing else is handled until the state is the snapshot's: entries after it must
        // not be applied to the state before it.
        // Storage writes the install (queued before this request) before it reads.
        auto index = meta.index();
        self->request(self->state.storage, caf::infinite, restore_atom::value)
            .await(
                [self, index](const pb::SnapshotMeta& current,
                              std::shared_ptr<snapshot_source>& in) {
                  if (current.index() < index) // the install did not happen: stop, never guess
                    self->quit(
                        make_error(errc::storage_failed, "snapshot " + std::to_string(index) +
                                                             " to restore is not in storage"));
                  else if (current.index() > self->state.applied)
                    restore(self, current, *in);
                },
                [self](caf::error& e) { self->quit(std::move(e)); });
      },
  };
}

} // namespace

caf::actor spawn_state_machine(caf::local_actor* node, std::shared_ptr<const node_config> cfg,
                               caf::actor storage, std::unique_ptr<state_machine> sm,
                               std::optional<pb::SnapshotMeta> start,
                               std::shared_ptr<snapshot_source> start_data) {
  return node->spawn<caf::linked>(sm_impl, std::move(cfg), caf::actor_cast<caf::actor>(node),
                                  std::move(storage), std::shared_ptr<state_machine>{std::move(sm)},
                                  std::move(start), std::move(start_data));
}

} // namespace cafraft
