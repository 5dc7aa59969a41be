// Every message that crosses the wire, as a node receives it over BASP: the bytes are read by
// CAF's binary_deserializer into a caf::message, through the protobuf inspect bridge of the
// registered types (messages/pb_inspect.hpp, messages/register.cpp). A message that loads is
// then handed to what the node does with it where that is a pure function: a follower (the
// Raft rules, its durable storage on the in-memory disk, receive_chunk, the key-value store)
// and a leader (the replication bookkeeping, compaction, membership changes), the way
// actors/follower.cpp and actors/leader.cpp call them.
//
// Input: u8 setup, then steps. A step is a u8 action and, for action 0, a blob: a serialized
// caf::message (fuzz-seeds writes them with binary_serializer).
//   action % 4 == 0  the blob arrives at both nodes (each takes what its role handles)
//   action % 4 == 1  the leader's next message to the follower arrives (they talk honestly)
//   action % 4 == 2  the follower's next answer arrives at the leader
//   action % 4 == 3  the leader's heartbeat tick; with bit 2 its state machine takes a snapshot
//                    first and the log before it goes (compaction)
//
// Checks, besides the sanitizers: a step never leaves a role's log with a gap, its commit
// index behind its applied index, a storage write refused, or an apply gap (which stops a
// node); at the end, what the follower's storage loads again is what the follower holds.
#include <deque>
#include <variant>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/deep_to_string.hpp>
#include <caf/message.hpp>

#include "fuzz_common.hpp"
#include <cafraft/messages/pb_inspect.hpp>
#include <cafraft/messages/register.hpp>
#include <cafraft/runtime/replication.hpp>
#include <cafraft/runtime/rules.hpp>
#include <cafraft/runtime/state_machine.hpp>

using namespace cafraft;
namespace fz = cafraft::fuzz;

namespace {

caf::actor_system& actor_system() {
  struct holder {
    caf::actor_system_config cfg;
    std::unique_ptr<caf::actor_system> sys;
  };
  static holder* h = [] {
    auto* x = new holder; // never destroyed: the fuzzer exits without tearing CAF down
    x->cfg.set("scheduler.policy", caf::atom("testing")); // no worker threads
    register_types(x->cfg);
    x->sys = std::make_unique<caf::actor_system>(x->cfg);
    return x;
  }();
  return *h->sys;
}

void check_state(const raft_state& s, const char* who) {
  for (size_t i = 0; i < s.log.size(); ++i)
    FUZZ_CHECK(s.log[i].index() == s.snapshot_index + i + 1, "%s: log[%zu] has index %llu", who, i,
               static_cast<unsigned long long>(s.log[i].index()));
  FUZZ_CHECK(s.apply_sent <= s.commit_index, "%s: applied %llu > commit %llu", who,
             static_cast<unsigned long long>(s.apply_sent),
             static_cast<unsigned long long>(s.commit_index));
  FUZZ_CHECK(s.commit_index >= s.snapshot_index, "%s: commit below the snapshot", who);
}

std::vector<member> three_members() {
  return {{"n1", "h1:1", false, 0}, {"n2", "h2:2", false, 0}, {"n3", "h3:3", false, 0}};
}

std::string put_command(const std::string& key, const std::string& value) {
  pb::KvCommand c;
  c.mutable_put()->set_key(key);
  c.mutable_put()->set_value(value);
  return c.SerializeAsString();
}

// The state machine actor (actors/state_machine.cpp) with the built-in key-value store.
struct applier {
  kv_store sm;
  uint64_t applied = 0;
  const char* who;

  explicit applier(const char* w) : who(w) {}

  void apply(const std::vector<pb::LogEntry>& entries) {
    for (auto& e : entries) {
      if (e.index() <= applied)
        continue;
      FUZZ_CHECK(e.index() == applied + 1, "%s: apply gap, applied %llu, got %llu", who,
                 static_cast<unsigned long long>(applied),
                 static_cast<unsigned long long>(e.index()));
      if (e.type() == pb::ENTRY_COMMAND)
        sm.apply(e.index(), e.data());
      rules::config_of(e);
      applied = e.index();
    }
  }
  void restore(uint64_t index, const std::string& data) {
    sm.restore(data); // false for data that is not a snapshot of this store: kept as it was
    applied = index;
  }
};

using to_follower = std::variant<pb::AppendEntries, pb::InstallSnapshot>;
using to_leader = std::variant<pb::AppendEntriesResponse, pb::InstallSnapshotResponse>;

// n1: a follower on durable storage, loaded from a directory as actors/node.cpp loads it.
struct follower {
  std::shared_ptr<test::crash_disk> fs = fz::new_disk();
  fz::load_options lo;
  std::unique_ptr<durable_storage> store;
  raft_state s;
  applier sm{"follower"};
  bool leader_recent = false;
  std::deque<to_leader>* out = nullptr;

  follower(bool with_snapshot, bool recent) : leader_recent(recent) {
    lo.read_chunk = 64;
    fz::put(*fs, "MANIFEST", fz::manifest_file());
    fz::put(*fs, "HARDSTATE", fz::hard_state_file(2, "n2"));
    std::vector<pb::LogEntry> es;
    uint64_t terms[] = {1, 1, 2, 2, 2, 2};
    for (uint64_t i = 1; i <= 6; ++i)
      es.push_back(fz::entry(i, terms[i - 1], put_command("k" + std::to_string(i % 3), "v")));
    fz::put(*fs, fz::segment_name(1), fz::segment_file(1, 1, {es}));
    if (with_snapshot) {
      pb::SnapshotMeta meta;
      meta.set_index(3);
      meta.set_term(1);
      for (auto& m : three_members()) {
        auto* pm = meta.add_members();
        pm->set_id(m.id);
        pm->set_address(m.address);
      }
      std::string data = kv_store{}.snapshot();
      meta.set_size(data.size());
      meta.set_crc32c(crc32c(data));
      fz::put(*fs, fz::snapshot_name(3), fz::snapshot_file(meta, data));
    }
    store = std::make_unique<durable_storage>(fz::storage_options(fs, lo));
    auto rec = store->load();
    s.id = "n1";
    s.term = s.stored_term = rec.hard_state.term();
    s.voted_for = s.stored_vote = rec.hard_state.voted_for();
    s.log = std::move(rec.log);
    if (rec.snapshot) {
      s.snapshot_index = rec.snapshot->index();
      s.snapshot_term = rec.snapshot->term();
      s.commit_index = s.apply_sent = s.snapshot_index;
      s.base_config = configuration::from_members(rec.snapshot->members(), s.snapshot_index);
      sm.restore(s.snapshot_index, read_snapshot_data(*store));
    } else {
      s.base_config.members = three_members();
    }
    s.was_member = true;
    rules::refresh_config(s);
  }

  void persist(persist_batch b) {
    if (b.empty())
      return;
    std::vector<persist_batch> batches;
    batches.push_back(std::move(b));
    try {
      store->write(std::move(batches));
    } catch (const std::exception& e) {
      FUZZ_CHECK(false, "the follower's storage refused a write the rules made: %s", e.what());
    }
  }

  void persist_hard_state() {
    persist_batch b;
    b.hard_state = rules::take_hard_state(s);
    persist(std::move(b));
  }

  void on_append(const pb::AppendEntries& req) {
    if (req.term() < s.term) {
      out->push_back(rules::reject_stale_append(s, req));
      return;
    }
    rules::observe_term(s, req.term());
    s.leader_id = req.leader_id();
    auto fx = rules::accept_append(s, req);
    persist_batch b;
    b.hard_state = rules::take_hard_state(s);
    b.truncate_from = fx.truncated_from;
    b.entries = std::move(fx.appended);
    persist(std::move(b));
    out->push_back(std::move(fx.response));
    sm.apply(rules::take_committed(s));
    rules::check_removed(s);
  }

  void on_install_snapshot(const pb::InstallSnapshot& req) {
    pb::InstallSnapshotResponse resp;
    resp.set_follower_id(s.id);
    resp.set_incarnation(s.incarnation);
    resp.set_snapshot_index(req.meta().index());
    resp.set_term(s.term);
    if (req.term() < s.term) {
      resp.set_last_log_index(s.last_index());
      out->push_back(resp);
      return;
    }
    rules::observe_term(s, req.term());
    s.leader_id = req.leader_id();
    resp.set_term(s.term);
    persist_hard_state();
    auto& meta = req.meta();
    if (meta.index() <= s.commit_index) {
      resp.set_installed(true);
      resp.set_next_offset(meta.size());
      resp.set_last_log_index(s.last_index());
      out->push_back(resp);
      return;
    }
    // The storage actor (actors/storage.cpp), then on_chunk_stored.
    bool complete = false;
    uint64_t next = 0;
    try {
      next = store->receive_chunk(req, complete);
    } catch (const std::exception& e) {
      FUZZ_CHECK(false, "receive_chunk failed: %s", e.what());
    }
    FUZZ_CHECK(next <= meta.size(), "receive_chunk: next offset %llu past the size %llu",
               static_cast<unsigned long long>(next), static_cast<unsigned long long>(meta.size()));
    resp.set_last_log_index(s.last_index());
    if (!complete) {
      resp.set_next_offset(next);
      out->push_back(resp);
      return;
    }
    resp.set_next_offset(meta.size());
    resp.set_installed(true);
    if (meta.index() <= s.commit_index) {
      out->push_back(resp);
      return;
    }
    bool reset = rules::install_snapshot(s, meta);
    persist_batch b;
    b.hard_state = rules::take_hard_state(s);
    b.snapshot = meta;
    b.reset_log = reset;
    persist(std::move(b));
    resp.set_last_log_index(s.last_index());
    out->push_back(resp);
    pb::SnapshotMeta stored;
    std::string data;
    FUZZ_CHECK(store->read_snapshot(0, static_cast<size_t>(meta.size()), stored, data),
               "an installed snapshot cannot be read");
    FUZZ_CHECK(stored.index() == meta.index() && data.size() == meta.size(),
               "the installed snapshot reads back as another");
    sm.restore(meta.index(), data);
    rules::check_removed(s);
  }

  void on_vote_request(const pb::RequestVote& req) {
    if (rules::candidate_removed(s, req))
      return;
    if (req.pre_vote()) {
      rules::decide_pre_vote(s, req, leader_recent && !s.leader_id.empty());
      return;
    }
    rules::observe_term(s, req.term());
    rules::decide_vote(s, req);
    persist_hard_state();
  }

  void on_stale_response(uint64_t term) {
    if (rules::observe_term(s, term))
      persist_hard_state();
  }

  void receive(const caf::message& m) {
    if (m.match_elements<pb::AppendEntries>())
      on_append(m.get_as<pb::AppendEntries>(0));
    else if (m.match_elements<pb::InstallSnapshot>())
      on_install_snapshot(m.get_as<pb::InstallSnapshot>(0));
    else if (m.match_elements<pb::RequestVote>())
      on_vote_request(m.get_as<pb::RequestVote>(0));
    else if (m.match_elements<pb::RequestVoteResponse>())
      on_stale_response(m.get_as<pb::RequestVoteResponse>(0).term());
    else if (m.match_elements<pb::AppendEntriesResponse>())
      on_stale_response(m.get_as<pb::AppendEntriesResponse>(0).term());
    else if (m.match_elements<pb::InstallSnapshotResponse>())
      on_stale_response(m.get_as<pb::InstallSnapshotResponse>(0).term());
    check_state(s, "follower");
  }

  // Restarted: the storage loads what the follower holds.
  void check_reload() {
    store.reset();
    durable_storage again{fz::storage_options(fs, lo)};
    recovered_state r;
    try {
      r = again.load();
    } catch (const storage_error& e) {
      FUZZ_CHECK(false, "the follower's directory does not load again: %s", e.what());
    }
    FUZZ_CHECK(r.hard_state.term() == s.term && r.hard_state.voted_for() == s.voted_for,
               "hard state on disk (term %llu) is not the follower's (term %llu)",
               static_cast<unsigned long long>(r.hard_state.term()),
               static_cast<unsigned long long>(s.term));
    uint64_t base = r.snapshot ? r.snapshot->index() : 0;
    FUZZ_CHECK(base == s.snapshot_index, "snapshot on disk at %llu, the follower's at %llu",
               static_cast<unsigned long long>(base),
               static_cast<unsigned long long>(s.snapshot_index));
    FUZZ_CHECK(r.log.size() == s.log.size(), "log on disk holds %zu entries, the follower %zu",
               r.log.size(), s.log.size());
    for (size_t i = 0; i < r.log.size(); ++i)
      FUZZ_CHECK(r.log[i].SerializeAsString() == s.log[i].SerializeAsString(),
                 "entry %llu on disk is not the follower's",
                 static_cast<unsigned long long>(s.log[i].index()));
  }
};

// n2: the leader of term 3, with a snapshot through 4 and entries 5 to 10.
struct leader {
  raft_state s;
  std::unique_ptr<replication> repl;
  applier sm{"leader"};
  std::string snapshot_data;
  uint64_t own_term_index = 7;
  std::deque<to_follower>* out = nullptr;
  static constexpr uint64_t chunk_bytes = 48;

  leader() {
    s.id = "n2";
    s.term = s.stored_term = 3;
    s.voted_for = s.stored_vote = "n2";
    s.snapshot_index = 4;
    s.snapshot_term = 1;
    s.base_config.members = three_members();
    s.base_config.index = 0;
    uint64_t terms[] = {2, 2, 3, 3, 3, 3};
    for (uint64_t i = 5; i <= 10; ++i)
      s.log.push_back(fz::entry(i, terms[i - 5], put_command("k" + std::to_string(i % 4), "w")));
    s.commit_index = s.apply_sent = 7;
    s.was_member = true;
    rules::refresh_config(s);
    kv_store kv;
    kv.apply(1, put_command("k0", "v"));
    snapshot_data = kv.snapshot();
    sm.restore(7, snapshot_data); // 5 to 7 applied as well
    repl = std::make_unique<replication>(s, replication_limits{3, 256, 2});
    repl->on_local_persisted(s.last_index());
  }

  pb::SnapshotMeta snapshot_meta() const {
    pb::SnapshotMeta meta;
    meta.set_index(s.snapshot_index);
    meta.set_term(s.snapshot_term);
    *meta.mutable_members() = s.base_config.to_proto().members();
    meta.set_size(snapshot_data.size());
    meta.set_crc32c(crc32c(snapshot_data));
    return meta;
  }

  void on_commit() { sm.apply(rules::take_committed(s)); }

  void send_appends(const std::string& peer, replication::send_mode mode) {
    for (auto& ae : repl->to_send(peer, mode)) {
      for (int i = 0; i < ae.entries_size(); ++i)
        FUZZ_CHECK(ae.entries(i).index() == ae.prev_log_index() + static_cast<uint64_t>(i) + 1,
                   "the leader sends entries out of order");
      if (peer == "n1")
        out->push_back(std::move(ae));
    }
    if (auto offset = repl->snapshot_chunk_due(peer, mode)) {
      auto meta = snapshot_meta();
      if (!repl->chunk_read(peer, meta.index(), *offset)) {
        send_appends(peer, replication::send_mode::entries);
        return;
      }
      pb::InstallSnapshot req;
      req.set_term(s.term);
      req.set_leader_id(s.id);
      req.set_offset(*offset);
      auto data = *offset < snapshot_data.size() ? snapshot_data.substr(*offset, chunk_bytes)
                                                 : std::string{};
      req.set_done(*offset + data.size() >= meta.size());
      req.set_data(std::move(data));
      *req.mutable_meta() = std::move(meta);
      if (peer == "n1")
        out->push_back(std::move(req));
    }
  }

  std::vector<std::string> peers() const {
    std::vector<std::string> out;
    for (auto& [id, p] : repl->progress())
      out.push_back(id);
    return out;
  }

  void tick(bool compact) {
    if (compact && s.apply_sent > s.snapshot_index) {
      pb::SnapshotMeta meta;
      meta.set_index(s.apply_sent);
      meta.set_term(s.term_at(s.apply_sent));
      rules::compact(s, meta);
      snapshot_data = sm.sm.snapshot();
    }
    for (auto& peer : peers())
      send_appends(peer, replication::send_mode::tick);
    repl->drop_departed(12);
    check_state(s, "leader");
  }

  void propose(std::string data) {
    pb::LogEntry e;
    e.set_index(s.last_index() + 1);
    e.set_term(s.term);
    e.set_type(pb::ENTRY_COMMAND);
    e.set_data(std::move(data));
    s.log.push_back(std::move(e));
    if (repl->on_local_persisted(s.last_index()))
      on_commit();
    for (auto& peer : peers())
      send_appends(peer, replication::send_mode::entries);
  }

  void change_members(std::vector<member> next) {
    if (!rules::config_change_allowed(s, own_term_index))
      return;
    rules::append_config(s, std::move(next));
    repl->on_config_change();
    if (repl->on_local_persisted(s.last_index()))
      on_commit();
    for (auto& peer : peers())
      send_appends(peer, replication::send_mode::entries);
  }

  void on_response(const pb::AppendEntriesResponse& resp) {
    if (resp.term() != s.term)
      return; // a higher term deposes the leader, a lower one is stale
    if (repl->on_response(resp))
      on_commit();
    send_appends(resp.follower_id(), replication::send_mode::entries);
  }

  void on_snapshot_response(const pb::InstallSnapshotResponse& resp) {
    if (resp.term() != s.term)
      return;
    if (repl->on_snapshot_response(resp))
      on_commit();
    send_appends(resp.follower_id(), replication::send_mode::entries);
  }

  void receive(const caf::message& m) {
    if (m.match_elements<pb::AppendEntriesResponse>()) {
      on_response(m.get_as<pb::AppendEntriesResponse>(0));
    } else if (m.match_elements<pb::InstallSnapshotResponse>()) {
      on_snapshot_response(m.get_as<pb::InstallSnapshotResponse>(0));
    } else if (m.match_elements<pb::RequestVote>()) {
      rules::candidate_removed(s, m.get_as<pb::RequestVote>(0));
    } else if (m.match_elements<pb::AppendEntries>()) {
      auto& req = m.get_as<pb::AppendEntries>(0);
      if (req.term() < s.term)
        rules::reject_stale_append(s, req);
    } else if (m.match_elements<pb::PutRequest>()) {
      pb::KvCommand cmd;
      *cmd.mutable_put() = m.get_as<pb::PutRequest>(0);
      if (!cmd.put().key().empty())
        propose(cmd.SerializeAsString());
    } else if (m.match_elements<pb::DeleteRequest>()) {
      pb::KvCommand cmd;
      *cmd.mutable_del() = m.get_as<pb::DeleteRequest>(0);
      if (!cmd.del().key().empty())
        propose(cmd.SerializeAsString());
    } else if (m.match_elements<pb::CasRequest>()) {
      pb::KvCommand cmd;
      *cmd.mutable_cas() = m.get_as<pb::CasRequest>(0);
      if (!cmd.cas().key().empty())
        propose(cmd.SerializeAsString());
    } else if (m.match_elements<pb::ProposeRequest>()) {
      propose(m.get_as<pb::ProposeRequest>(0).data());
    } else if (m.match_elements<pb::GetRequest>()) {
      pb::KvQuery q;
      q.set_key(m.get_as<pb::GetRequest>(0).key());
      sm.sm.query(q.SerializeAsString());
    } else if (m.match_elements<pb::JoinRequest>()) {
      auto& req = m.get_as<pb::JoinRequest>(0);
      if (!req.id().empty() && !s.config.is_member(req.id())) {
        auto next = s.config.members;
        next.push_back({req.id(), req.address(), true, req.incarnation()});
        change_members(std::move(next));
      }
    } else if (m.match_elements<pb::LeaveRequest>()) {
      auto& req = m.get_as<pb::LeaveRequest>(0);
      std::vector<member> next;
      for (auto& x : s.config.members)
        if (x.id != req.id())
          next.push_back(x);
      if (next.size() != s.config.members.size() && !next.empty())
        change_members(std::move(next));
    } else if (m.match_elements<pb::KvCommand>()) {
      sm.sm.apply(0, m.get_as<pb::KvCommand>(0).SerializeAsString());
    } else if (m.match_elements<pb::LogEntry>()) {
      rules::config_of(m.get_as<pb::LogEntry>(0));
    } else if (m.match_elements<pb::BatchRequest>()) {
      for (auto& item : m.get_as<pb::BatchRequest>(0).items()) {
        pb::KvCommand cmd;
        if (item.has_put() && !item.put().key().empty())
          *cmd.mutable_put() = item.put();
        else if (item.has_del() && !item.del().key().empty())
          *cmd.mutable_del() = item.del();
        else if (item.has_cas() && !item.cas().key().empty())
          *cmd.mutable_cas() = item.cas();
        else if (item.has_propose())
          propose(item.propose().data());
        if (cmd.op_case() != pb::KvCommand::OP_NOT_SET)
          propose(cmd.SerializeAsString());
      }
    }
    check_state(s, "leader");
  }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& sys = actor_system();
  fz::input in{data, size};
  auto setup = in.u8();
  std::deque<to_follower> to_f;
  std::deque<to_leader> to_l;
  follower f{(setup & 1) != 0, (setup & 2) != 0};
  leader l;
  f.out = &to_l;
  l.out = &to_f;
  for (size_t steps = 0; !in.empty() && steps < 256; ++steps) {
    auto action = in.u8();
    switch (action % 4) {
    case 0: {
      auto bytes = in.blob();
      caf::message msg;
      caf::binary_deserializer source{sys, bytes.data(), bytes.size()};
      if (source(msg))
        break;                              // BASP drops a message that does not load
      auto text = caf::deep_to_string(msg); // what a log line of the message costs
      (void)text;
      f.receive(msg);
      l.receive(msg);
      break;
    }
    case 1:
      if (!to_f.empty()) {
        std::visit([&](auto& m) { f.receive(caf::make_message(m)); }, to_f.front());
        to_f.pop_front();
      }
      break;
    case 2:
      if (!to_l.empty()) {
        std::visit([&](auto& m) { l.receive(caf::make_message(m)); }, to_l.front());
        to_l.pop_front();
      }
      break;
    default:
      l.tick((action & 4) != 0);
      break;
    }
    while (to_f.size() > 64)
      to_f.pop_front();
    while (to_l.size() > 64)
      to_l.pop_front();
  }
  f.check_reload();
  return 0;
}
