// Scenario files (tests/scenarios/*.txt), in the style of etcd's datadriven tests: a small
// runner drives nodes made of the pure Raft core alone (runtime/core.hpp), with memory storage
// and a key-value store, over a network the scenario controls message by message. Each block
// is a command, a line "----", and the output the command must print:
//
//     propose n1 k v
//     ----
//     #1 sent to n1
//
// CAFRAFT_REWRITE=1 writes the printed output back into the files instead of comparing
// (review the diff before committing it). docs/testing.md lists the commands.
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/logger.h>

#include <cafraft/messages/errors.hpp>
#include <cafraft/runtime/core.hpp>
#include <cafraft/runtime/crc32c.hpp>
#include <cafraft/runtime/rules.hpp>
#include <cafraft/runtime/state_machine.hpp>
#include <cafraft/runtime/storage.hpp>

#ifndef CAFRAFT_SCENARIO_DIR
#error "CAFRAFT_SCENARIO_DIR must name tests/scenarios"
#endif

namespace cafraft::core {
namespace {

std::string entries_text(const google::protobuf::RepeatedPtrField<pb::LogEntry>& es) {
  std::string out;
  for (auto& e : es)
    out += (out.empty() ? "" : " ") + std::to_string(e.index()) + "/" + std::to_string(e.term());
  return "[" + out + "]";
}

/// One line per message, as the scenarios show them.
std::string describe(const raft_message& m) {
  std::ostringstream out;
  std::visit(overloaded{
                 [&](const pb::AppendEntries& x) {
                   out << "App term=" << x.term() << " prev=" << x.prev_log_index() << "/"
                       << x.prev_log_term() << " entries=" << entries_text(x.entries())
                       << " commit=" << x.leader_commit();
                 },
                 [&](const pb::AppendEntriesResponse& x) {
                   out << "AppResp term=" << x.term();
                   if (x.success())
                     out << " ok match=" << x.match_index();
                   else
                     out << " reject at=" << x.rejected_index() << " hint=" << x.reject_hint();
                 },
                 [&](const pb::RequestVote& x) {
                   out << (x.pre_vote() ? "PreVote" : "Vote") << " term=" << x.term()
                       << " last=" << x.last_log_index() << "/" << x.last_log_term();
                 },
                 [&](const pb::RequestVoteResponse& x) {
                   out << (x.pre_vote() ? "PreVoteResp" : "VoteResp") << " term=" << x.term()
                       << (x.granted() ? " granted" : " refused")
                       << (x.removed() ? " removed" : "");
                 },
                 [&](const pb::InstallSnapshot& x) {
                   out << "Snap term=" << x.term() << " index=" << x.meta().index() << "/"
                       << x.meta().term() << " offset=" << x.offset() << (x.done() ? " done" : "");
                 },
                 [&](const pb::InstallSnapshotResponse& x) {
                   out << "SnapResp term=" << x.term() << " next=" << x.next_offset()
                       << (x.installed() ? " installed" : "");
                 },
                 [&](const pb::TimeoutNow& x) { out << "TimeoutNow term=" << x.term(); },
                 [&](const pb::ReadIndexRequest& x) { out << "ReadIndex term=" << x.term(); },
                 [&](const pb::ReadIndexResponse& x) {
                   out << "ReadIndexResp term=" << x.term()
                       << (x.granted() ? " index=" + std::to_string(x.index()) : " refused");
                 },
             },
             m);
  return out.str();
}

struct sim_node {
  std::string id;
  std::shared_ptr<memory_storage> store = std::make_shared<memory_storage>();
  kv_store kv;
  raft_state s;
  role_kind role = role_kind::follower;
  follower_role follower;
  candidate_role candidate;
  leader_role leader;
  bool up = true;
  bool stopped = false; // removed
};

struct envelope {
  std::string from, to;
  raft_message msg;
};

/// Nodes of the pure core, a network that holds every message until the scenario delivers it,
/// and a transcript of what happened.
class world {
public:
  explicit world(std::ostream& out) : out_(out) {
    cfg_.pre_vote = true;
    cfg_.check_quorum = true;
    cfg_.check_invariants = true;
    cfg_.snapshot_chunk_bytes = 64;
  }

  void create(const std::vector<std::string>& ids) {
    for (auto& id : ids)
      members_.push_back(member{id, "addr-" + id});
    for (auto& id : ids)
      start(id, true);
  }

  /// A node that joins later: empty, with an incarnation of its own, not in any configuration.
  void add_empty(const std::string& id) { start(id, false); }

  void start(const std::string& id, bool initial) {
    auto& n = nodes_[id];
    n.id = id;
    n.up = true;
    auto rec = n.store->load();
    if (!initial && rec.hard_state.incarnation() == 0) {
      // A joining node writes the incarnation it joins with before it asks (docs/membership.md).
      persist_batch b;
      b.hard_state.emplace();
      b.hard_state->set_incarnation(100 + nodes_.size());
      n.store->write({std::move(b)});
      rec = n.store->load();
    }
    n.s = rules::recover(rec, rec.log, id, initial ? members_ : std::vector<member>{});
    n.kv = kv_store{};
    if (rec.snapshot)
      n.kv.restore(read_snapshot_data(*n.store));
    become_role(n, role_kind::follower);
  }

  void crash(const std::string& id) {
    auto& n = node(id);
    n.up = false;
    out_ << id << " crashes\n";
  }

  void restart(const std::string& id) {
    start(id, is_initial(id));
    out_ << id << " restarts: term " << node(id).s.term << ", last " << node(id).s.last_index()
         << ", commit " << node(id).s.commit_index << "\n";
  }

  bool is_initial(const std::string& id) const {
    for (auto& m : members_)
      if (m.id == id)
        return true;
    return false;
  }

  sim_node& node(const std::string& id) {
    auto i = nodes_.find(id);
    if (i == nodes_.end())
      throw std::runtime_error("no node " + id);
    return i->second;
  }

  /// Steps `n` with `ev` and carries out the effects, then the events they cause.
  void step(sim_node& n, event ev) {
    std::deque<event> local{std::move(ev)};
    while (!local.empty() && n.up && !n.stopped) {
      auto next = std::move(local.front());
      local.pop_front();
      effects fx;
      env e{cfg_for(n.id), log_, now_, rng_};
      switch (n.role) {
      case role_kind::follower:
        fx = step_follower(n.s, n.follower, e, next);
        break;
      case role_kind::candidate:
        fx = step_candidate(n.s, n.candidate, e, next);
        break;
      case role_kind::leader:
        fx = step_leader(n.s, n.leader, e, next);
        break;
      }
      std::optional<become> hand;
      for (auto& f : fx)
        run(n, f, local, hand);
      if (hand) {
        out_ << n.id << " becomes " << to_string(hand->next) << " (term " << n.s.term << ")\n";
        become_role(n, hand->next, &local);
        if (hand->redispatch)
          local.push_back(std::move(next));
      }
    }
  }

  void run(sim_node& n, effect& f, std::deque<event>& local, std::optional<become>& hand) {
    std::visit(
        overloaded{
            [&](persist& p) {
              n.store->write({std::move(p.batch)});
              if (p.notify != 0)
                local.push_back(persisted{p.notify});
            },
            [&](send& m) {
              net_.push_back(envelope{n.id, m.to, std::move(m.msg)});
            },
            [&](apply& a) {
              std::vector<std::string> results;
              for (auto& entry : a.entries)
                results.push_back(entry.type() == pb::ENTRY_COMMAND
                                      ? n.kv.apply(entry.index(), entry.data())
                                      : std::string{});
              if (a.report)
                local.push_back(applied{a.entries.empty() ? 0 : a.entries.front().index(),
                                        std::move(results), a.barrier});
            },
            [&](leader_known&) {},
            [&](store_chunk& c) {
              bool complete = false;
              auto next = n.store->receive_chunk(c.req, complete);
              local.push_back(chunk_stored{c.req, c.resp, next, complete});
            },
            [&](restore& r) {
              pb::SnapshotMeta meta;
              std::string data;
              n.store->read_snapshot(0, r.meta.size(), meta, data);
              n.kv = kv_store{};
              n.kv.restore(data);
            },
            [&](stop_removed&) {
              n.stopped = true;
              out_ << n.id << " stops: it was removed\n";
            },
            [&](become& b) { hand = b; },
            [&](reply& r) {
              out_ << n.id << " answers #" << r.id << ": " << text(r.value) << "\n";
            },
            [&](read_state& r) {
              auto& key = r.query.bytes; // scenarios read keys
              pb::KvQuery q;
              q.set_key(key);
              pb::GetResponse resp;
              resp.ParseFromString(n.kv.query(q.SerializeAsString()));
              out_ << n.id << " answers #" << r.id << ": "
                   << (resp.found() ? key + "=" + resp.value() : key + " not found") << "\n";
            },
            [&](read_chunk& c) {
              pb::SnapshotMeta meta;
              std::string data;
              if (n.store->read_snapshot(c.offset, c.max, meta, data))
                local.push_back(chunk_read{c.peer, c.offset, std::move(meta), std::move(data)});
            },
            [&](flush_soon&) { local.push_back(flush_now{}); },
        },
        f);
  }

  static std::string text(const reply_value& v) {
    return std::visit(
        overloaded{
            [](const pb::WriteResponse& w) { return "ok index=" + std::to_string(w.index()); },
            [](const pb::MembershipResponse& m) {
              return "ok config=" + std::to_string(m.config_index()) +
                     " members=" + std::to_string(m.members_size());
            },
            [](const pb::LeaderInfo& l) { return "ok leader=" + l.id(); },
            [](uint64_t term) { return "ok term=" + std::to_string(term); },
            [](const failure& f) {
              return std::string{"error "} + to_string(f.code) +
                     (f.detail.empty() ? "" : ": " + f.detail);
            },
        },
        v);
  }

  void become_role(sim_node& n, role_kind next, std::deque<event>* local = nullptr) {
    n.role = next;
    n.follower = follower_role{};
    n.candidate = candidate_role{};
    n.leader = leader_role{};
    if (local) // the started event goes first, before a redispatched message
      local->push_front(started{});
    else
      step(n, started{});
  }

  // -- the network --------------------------------------------------------------------------

  bool blocked(const std::string& a, const std::string& b) const { return cut_.count({a, b}) > 0; }

  /// Delivers the messages waiting now (those they cause wait for the next round), to `only`
  /// when given. Returns how many were delivered.
  size_t deliver_round(const std::string& only = {}) {
    std::deque<envelope> now;
    std::deque<envelope> keep;
    for (auto& m : net_)
      (only.empty() || m.to == only ? now : keep).push_back(std::move(m));
    net_ = std::move(keep);
    size_t n = 0;
    for (auto& m : now) {
      auto i = nodes_.find(m.to);
      if (blocked(m.from, m.to) || i == nodes_.end() || !i->second.up || i->second.stopped) {
        if (verbose_)
          out_ << m.from << "->" << m.to << " " << describe(m.msg) << " (dropped)\n";
        continue;
      }
      if (verbose_)
        out_ << m.from << "->" << m.to << " " << describe(m.msg) << "\n";
      ++n;
      step(i->second, m.msg);
    }
    return n;
  }

  void stabilize() {
    for (int round = 0; round < 1000 && !net_.empty(); ++round)
      deliver_round();
  }

  void drop(const std::string& to) {
    std::deque<envelope> keep;
    for (auto& m : net_)
      if (!to.empty() && m.to != to)
        keep.push_back(std::move(m));
      else
        out_ << m.from << "->" << m.to << " " << describe(m.msg) << " (dropped)\n";
    net_ = std::move(keep);
  }

  void partition(const std::vector<std::string>& side) {
    std::set<std::string> in(side.begin(), side.end());
    for (auto& [a, na] : nodes_)
      for (auto& [b, nb] : nodes_)
        if (in.count(a) != in.count(b))
          cut_.insert({a, b});
  }

  void heal() { cut_.clear(); }

  // -- what the scenarios see ---------------------------------------------------------------

  void status() {
    for (auto& [id, n] : nodes_) {
      out_ << id << ": ";
      if (!n.up) {
        out_ << "down\n";
        continue;
      }
      if (n.stopped) {
        out_ << "stopped (removed)\n";
        continue;
      }
      out_ << to_string(n.role) << " term=" << n.s.term
           << " vote=" << (n.s.voted_for.empty() ? "-" : n.s.voted_for)
           << " last=" << n.s.last_index() << "/" << n.s.last_term()
           << " commit=" << n.s.commit_index;
      if (n.s.snapshot_index > 0)
        out_ << " snapshot=" << n.s.snapshot_index;
      out_ << " leader=" << (n.s.leader_id.empty() ? "-" : n.s.leader_id) << " voters=";
      std::string voters, learners;
      for (auto& m : n.s.config.members)
        (m.learner ? learners : voters) += (m.learner ? "," : ",") + m.id;
      out_ << (voters.empty() ? "-" : voters.substr(1));
      if (!learners.empty())
        out_ << " learners=" << learners.substr(1);
      out_ << "\n";
    }
  }

  void print_log(const std::string& id) {
    auto& n = node(id);
    for (auto& e : n.s.log) {
      out_ << e.index() << "/" << e.term() << " ";
      switch (e.type()) {
      case pb::ENTRY_NOOP:
        out_ << "noop";
        break;
      case pb::ENTRY_CONFIG:
        out_ << "config";
        break;
      default: {
        pb::KvCommand cmd;
        cmd.ParseFromString(e.data());
        out_ << "put " << cmd.put().key() << "=" << cmd.put().value();
      }
      }
      out_ << "\n";
    }
  }

  void print_kv(const std::string& id) {
    for (auto& [k, v] : node(id).kv.data())
      out_ << k << "=" << v << "\n";
  }

  request_id next_request() { return ++requests_; }

  /// The state machine's snapshot through what n applied, and the log before it dropped.
  void compact(const std::string& id) {
    auto& n = node(id);
    pb::SnapshotMeta meta;
    meta.set_index(n.s.apply_sent);
    meta.set_term(n.s.term_at(n.s.apply_sent));
    auto config = n.s.base_config;
    for (auto& e : n.s.log)
      if (e.index() <= n.s.apply_sent)
        if (auto c = rules::config_of(e))
          config = *c;
    *meta.mutable_members() = config.to_proto().members();
    auto data = n.kv.snapshot();
    meta.set_size(data.size());
    meta.set_crc32c(crc32c(data));
    n.store->save_snapshot(meta, data);
    step(n, compacted{meta});
    out_ << id << " compacts through " << meta.index() << " (" << data.size() << " bytes)\n";
  }

  void set_verbose(bool v) { verbose_ = v; }
  void advance(std::chrono::milliseconds d) { now_ += d; }
  node_config& cfg() { return cfg_; }

private:
  const node_config& cfg_for(const std::string& id) {
    auto& c = cfgs_[id];
    c = cfg_;
    c.id = id;
    return c;
  }

  std::ostream& out_;
  node_config cfg_;
  std::map<std::string, node_config> cfgs_;
  spdlog::logger log_{"scenario"};
  time_point now_{std::chrono::seconds{1000}};
  std::mt19937_64 rng_{1};
  std::vector<member> members_;
  std::map<std::string, sim_node> nodes_;
  std::deque<envelope> net_;
  std::set<std::pair<std::string, std::string>> cut_;
  request_id requests_ = 0;
  bool verbose_ = true;
};

std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> w;
  for (std::string x; in >> x;)
    w.push_back(x);
  return w;
}

/// Runs one command; what it prints goes to `out`.
void run_command(world& w, const std::vector<std::string>& args, std::ostream& out) {
  auto& cmd = args.at(0);
  auto arg = [&](size_t i) -> const std::string& {
    if (i >= args.size())
      throw std::runtime_error(cmd + ": argument " + std::to_string(i) + " missing");
    return args[i];
  };
  if (cmd == "cluster") {
    w.create({args.begin() + 1, args.end()});
  } else if (cmd == "add-node") {
    w.add_empty(arg(1));
  } else if (cmd == "option") {
    if (arg(1) == "pre-vote")
      w.cfg().pre_vote = arg(2) == "on";
    else if (arg(1) == "check-quorum")
      w.cfg().check_quorum = arg(2) == "on";
    else if (arg(1) == "max-batch-entries")
      w.cfg().max_batch_entries = std::stoul(arg(2));
    else if (arg(1) == "snapshot-chunk-bytes")
      w.cfg().snapshot_chunk_bytes = std::stoul(arg(2));
    else
      throw std::runtime_error("unknown option " + arg(1));
  } else if (cmd == "timeout") { // the election timer of each named node fires
    for (size_t i = 1; i < args.size(); ++i)
      w.step(w.node(args[i]), election_timeout{});
  } else if (cmd == "tick") { // each named node checks its deadlines (after elapse)
    for (size_t i = 1; i < args.size(); ++i)
      w.step(w.node(args[i]), tick{});
  } else if (cmd == "heartbeat") {
    w.step(w.node(arg(1)), heartbeat_tick{});
  } else if (cmd == "check-quorum") {
    w.step(w.node(arg(1)), quorum_check{});
  } else if (cmd == "elapse") { // time passes (the pre-vote lease), in milliseconds
    w.advance(std::chrono::milliseconds{std::stoll(arg(1))});
  } else if (cmd == "deliver") {
    w.deliver_round(args.size() > 1 ? args[1] : "");
  } else if (cmd == "stabilize") {
    w.set_verbose(!(args.size() > 1 && args[1] == "quiet"));
    w.stabilize();
    w.set_verbose(true);
  } else if (cmd == "drop") {
    w.drop(args.size() > 1 ? args[1] : "");
  } else if (cmd == "partition") {
    w.partition({args.begin() + 1, args.end()});
  } else if (cmd == "heal") {
    w.heal();
  } else if (cmd == "crash") {
    w.crash(arg(1));
  } else if (cmd == "restart") {
    w.restart(arg(1));
  } else if (cmd == "propose") {
    pb::KvCommand c;
    c.mutable_put()->set_key(arg(2));
    c.mutable_put()->set_value(arg(3));
    auto id = w.next_request();
    out << "#" << id << " to " << arg(1) << "\n";
    w.step(w.node(arg(1)), write_request{id, pb::ENTRY_COMMAND, c.SerializeAsString()});
  } else if (cmd == "read") {
    auto id = w.next_request();
    out << "#" << id << " to " << arg(1) << "\n";
    w.step(w.node(arg(1)), read_request{id, {arg(2), true}, false});
  } else if (cmd == "join" || cmd == "leave") {
    auto id = w.next_request();
    out << "#" << id << " to " << arg(1) << "\n";
    change_request c{id, std::nullopt, {}};
    if (cmd == "join") {
      c.join.emplace();
      c.join->set_id(arg(2));
      c.join->set_address("addr-" + arg(2));
      c.join->set_incarnation(w.node(arg(2)).s.incarnation);
    } else {
      c.leave.set_id(arg(2));
    }
    w.step(w.node(arg(1)), c);
  } else if (cmd == "transfer") {
    auto id = w.next_request();
    out << "#" << id << " to " << arg(1) << "\n";
    w.step(w.node(arg(1)), transfer_request{id, arg(2)});
  } else if (cmd == "compact") {
    w.compact(arg(1));
  } else if (cmd == "status") {
    w.status();
  } else if (cmd == "log") {
    w.print_log(arg(1));
  } else if (cmd == "kv") {
    w.print_kv(arg(1));
  } else {
    throw std::runtime_error("unknown command " + cmd);
  }
}

struct block {
  std::string preamble; // the comments and blank lines before the command, kept by a rewrite
  std::string command;
  std::string expected;
};

std::vector<block> parse(const std::string& text, std::string& error) {
  std::vector<block> blocks;
  std::istringstream in(text);
  std::string line;
  block b;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') {
      b.preamble += line + "\n";
      continue;
    }
    b.command = line;
    if (!std::getline(in, line) || line != "----") {
      error = "after '" + b.command + "': expected ----";
      return {};
    }
    while (std::getline(in, line) && !line.empty())
      b.expected += line + "\n";
    blocks.push_back(std::move(b));
    b = block{};
  }
  return blocks;
}

std::vector<std::filesystem::path> scenario_files() {
  std::vector<std::filesystem::path> files;
  for (auto& e : std::filesystem::directory_iterator(CAFRAFT_SCENARIO_DIR))
    if (e.path().extension() == ".txt")
      files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

class Scenario : public ::testing::TestWithParam<std::filesystem::path> {};

TEST_P(Scenario, PrintsWhatTheFileExpects) {
  auto path = GetParam();
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::string error;
  auto blocks = parse(text.str(), error);
  ASSERT_TRUE(error.empty()) << path << ": " << error;
  ASSERT_FALSE(blocks.empty()) << path << " holds no command";
  bool rewrite = std::getenv("CAFRAFT_REWRITE") != nullptr;
  std::ostringstream rewritten;
  std::ostringstream sink;
  world w(sink);
  for (auto& b : blocks) {
    sink.str("");
    try {
      run_command(w, words(b.command), sink);
    } catch (const std::exception& ex) {
      FAIL() << path.filename() << ": '" << b.command << "': " << ex.what();
    }
    auto got = sink.str();
    if (rewrite) // the blank line after the output ends the block
      rewritten << b.preamble << b.command << "\n----\n" << got << "\n";
    else
      EXPECT_EQ(got, b.expected) << path.filename() << ", after '" << b.command << "'";
  }
  if (rewrite) {
    auto out = rewritten.str();
    out.pop_back(); // no blank line at the end
    std::ofstream(path) << out;
  }
}

std::string name_of(const ::testing::TestParamInfo<std::filesystem::path>& info) {
  auto stem = info.param.stem().string();
  for (auto& c : stem)
    if (!std::isalnum(static_cast<unsigned char>(c)))
      c = '_';
  return stem;
}

INSTANTIATE_TEST_SUITE_P(Files, Scenario, ::testing::ValuesIn(scenario_files()), name_of);

TEST(ScenarioFiles, AtLeastEightExist) {
  EXPECT_GE(scenario_files().size(), 8u) << "tests/scenarios holds the core's stories";
}

} // namespace
} // namespace cafraft::core
