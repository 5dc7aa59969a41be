#include "harness.hpp"

#include <cafraft/runtime/features.hpp>

#include <cstdlib>
#include <functional>
#include <sstream>

#include <spdlog/spdlog.h>

#include <cafraft/actors/guards.hpp>
#include <cafraft/runtime/durable_storage.hpp>
#include <cafraft/runtime/logging.hpp>

namespace cafraft::test {

test_config::test_config() {
  set("scheduler.policy", caf::atom("testing"));
  register_types(*this);
  // CAFRAFT_TEST_LOG=info shows the nodes' log lines while debugging a seed.
  auto lvl = std::getenv("CAFRAFT_TEST_LOG");
  get_logger("test")->set_level(lvl ? spdlog::level::from_str(lvl) : spdlog::level::off);
}

// -- network ------------------------------------------------------------------------------

void network::isolate(const std::string& a, const std::vector<std::string>& all) {
  for (auto& b : all)
    if (b != a) {
      cut.emplace(a, b);
      cut.emplace(b, a);
    }
}

void network::partition(const std::vector<std::string>& left,
                        const std::vector<std::string>& right) {
  for (auto& a : left)
    for (auto& b : right) {
      cut.emplace(a, b);
      cut.emplace(b, a);
    }
}

void network::heal() {
  cut.clear();
  script = nullptr;
  loss = duplicate = delay = 0;
}

namespace {

// A link actor shows every message to network::on_send as it is enqueued: in the handler of
// the actor that sends it.
class link_type : public caf::event_based_actor {
public:
  using caf::event_based_actor::event_based_actor;
  std::string from, to;
  std::shared_ptr<network> net;

  void enqueue(caf::mailbox_element_ptr x, caf::execution_unit* eu) override {
    if (net && net->on_send)
      net->on_send(from, to, x->copy_content_to_message());
    caf::event_based_actor::enqueue(std::move(x), eu);
  }
};

// One direction of one connection: consults the fault plan for every message it carries.
caf::behavior link_actor(link_type* self, std::string from, std::string to, caf::actor dest,
                         std::shared_ptr<network> net) {
  self->from = from;
  self->to = to;
  self->net = net;
  install_guards(self);
  // A connection closes when the process at its end goes away: the sender's peer actor
  // notices (core::peer_lost, which wakes a quiesced group).
  self->monitor(dest);
  self->set_down_handler([self](caf::down_msg& m) { self->quit(m.reason); });
  self->set_default_handler(
      [=](caf::scheduled_actor*, caf::message_view& x) -> caf::result<caf::message> {
        auto msg = x.move_content_to_message();
        if (msg.match_elements<pb::RequestVoteResponse>()) {
          auto& v = msg.get_as<pb::RequestVoteResponse>(0);
          if (v.granted() && !v.pre_vote()) { // a pre-vote promises nothing
            auto [it, added] = net->votes.emplace(std::make_pair(from, v.term()), to);
            if (!added && it->second != to)
              net->vote_violations.push_back(from + " voted for " + it->second + " and for " + to +
                                             " in term " + std::to_string(v.term()));
          }
        }
        if (msg.match_elements<pb::InstallSnapshot>())
          ++net->snapshot_chunks;
        if (msg.match_elements<pb::AppendEntries>() && msg.get_as<pb::AppendEntries>(0).quiesce())
          ++net->quiesce_marks;
        std::uniform_real_distribution<double> coin{0.0, 1.0};
        if (net->blocked(from, to) || (net->script && net->script(from, to, msg)) ||
            coin(net->rng) < net->loss) {
          ++net->dropped;
          return caf::message{};
        }
        int copies = coin(net->rng) < net->duplicate ? 2 : 1;
        if (copies == 2)
          ++net->duplicated;
        for (int i = 0; i < copies; ++i) {
          if (coin(net->rng) < net->delay) {
            std::uniform_int_distribution<int64_t> ms{1, net->max_delay.count()};
            ++net->delayed;
            self->delayed_send(dest, std::chrono::milliseconds{ms(net->rng)}, msg);
          } else {
            ++net->delivered;
            self->send(dest, msg);
          }
        }
        return caf::message{};
      });
  // Everything else goes to the default handler above.
  return {[net](peer_stats_atom) { return net->delivered; }};
}

// A node's storage that tells its cluster what it is about to make durable, so that a power
// failure can be timed to it (crash_plan).
template <class Base> class hooked_storage : public Base {
public:
  template <class... Ts>
  hooked_storage(std::function<void(disk_event)> hook, Ts&&... xs)
      : Base(std::forward<Ts>(xs)...), hook_(std::move(hook)) {}

  void write(std::vector<persist_batch> batches) override {
    hook_(classify(batches));
    Base::write(std::move(batches));
  }

protected:
  void saving_begin(const pb::SnapshotMeta& meta) override {
    hook_(disk_event::snapshot_save);
    Base::saving_begin(meta);
  }
  void saving_finish(const pb::SnapshotMeta& meta) override {
    hook_(disk_event::snapshot_save);
    Base::saving_finish(meta);
  }
  void incoming_begin(const pb::SnapshotMeta& meta) override {
    hook_(disk_event::snapshot_chunk);
    Base::incoming_begin(meta);
  }
  void incoming_append(std::string_view data) override {
    hook_(disk_event::snapshot_chunk);
    Base::incoming_append(data);
  }

private:
  // The most telling event of a group commit (entries are a follower's here: the cluster
  // knows whether the node leads).
  static disk_event classify(const std::vector<persist_batch>& batches) {
    bool config = false, entries = false;
    for (auto& b : batches) {
      if (b.snapshot)
        return disk_event::snapshot_install;
      for (auto& e : b.entries) {
        entries = true;
        config |= e.type() == pb::ENTRY_CONFIG;
      }
    }
    if (config)
      return disk_event::config_entry;
    return entries ? disk_event::follower_append : disk_event::hard_state;
  }

  std::function<void(disk_event)> hook_;
};

size_t hash_of(const std::string& data) {
  return std::hash<std::string>{}(data);
}

} // namespace

// -- invariant_checker --------------------------------------------------------------------

void invariant_checker::fail(std::string what) {
  if (violations.size() < 20)
    violations.push_back(std::move(what));
}

void invariant_checker::forget_volatile(const std::string& node_id) {
  // A term seen but not yet written may be lost in a crash; that is safe as long as no vote
  // or acknowledgement depended on it (the durable storage issue checks that in depth).
  nodes_[node_id].term = 0;
  nodes_[node_id].commit = 0;
  nodes_[node_id].applied = 0;
}

void invariant_checker::on_step(role_kind role, const raft_state& s) {
  ++steps;
  roles[s.id] = role;
  auto& v = nodes_[s.id];
  auto where = [&] {
    return s.id + " (" + to_string(role) + ", term " + std::to_string(s.term) + ") at step " +
           std::to_string(steps) + ": ";
  };
  // Terms and commit indexes never decrease.
  if (s.term < v.term)
    fail(where() + "term went down from " + std::to_string(v.term));
  if (s.commit_index < v.commit)
    fail(where() + "commit index went down from " + std::to_string(v.commit));
  if (s.commit_index > s.last_index())
    fail(where() + "commit index beyond the log");
  // Election safety: at most one leader per term (§5.2).
  if (role == role_kind::leader) {
    auto [i, added] = leaders.emplace(s.term, s.id);
    if (!added && i->second != s.id)
      fail(where() + "second leader in term, first was " + i->second);
  }
  v.term = s.term;
  v.commit = s.commit_index;
  v.base = s.snapshot_index;
  v.log.clear();
  v.log.reserve(s.log.size());
  for (auto& e : s.log)
    v.log.emplace_back(e.term(), hash_of(e.data()));
  // Log matching (§5.3): same index and term => identical entries up to there. Compared where
  // both logs hold entries; what snapshots hold is checked as committed entries.
  for (auto& [other_id, o] : nodes_) {
    if (other_id == s.id)
      continue;
    auto lo = std::max(v.base, o.base);
    auto hi = std::min(v.last(), o.last());
    uint64_t last_same = 0;
    for (auto i = hi; i > lo; --i)
      if (v.at(i).first == o.at(i).first) {
        last_same = i;
        break;
      }
    for (auto i = lo + 1; i <= last_same; ++i)
      if (v.at(i) != o.at(i)) {
        fail(where() + "log matching violated with " + other_id + " at index " + std::to_string(i));
        break;
      }
  }
  // Committed entries never change (state machine safety, §5.4.3).
  auto committed_last = std::min(s.commit_index, v.last());
  if (committed_.size() <= committed_last)
    committed_.resize(committed_last + 1);
  for (uint64_t i = v.base + 1; i <= committed_last; ++i) {
    auto& e = v.at(i);
    auto& c = committed_[i];
    if (!c.seen) {
      c = committed_entry{true, e.first, e.second, s.term};
      continue;
    }
    if (c.term != e.first || c.hash != e.second)
      fail(where() + "committed entry " + std::to_string(i) + " differs");
    c.seen_in_term = std::min(c.seen_in_term, s.term);
  }
  // Leader completeness (§5.4): a leader holds every entry committed before its term (in its
  // log, or in its snapshot).
  if (role == role_kind::leader)
    for (auto i = v.base + 1; i < committed_.size(); ++i)
      if (auto& c = committed_[i];
          c.seen && c.seen_in_term < s.term && (i > v.last() || v.at(i).first != c.term)) {
        fail(where() + "leader lacks committed entry " + std::to_string(i));
        break;
      }
}

void invariant_checker::on_apply(const std::string& node_id, const pb::LogEntry& entry) {
  auto& v = nodes_[node_id];
  if (entry.index() != v.applied + 1)
    fail(node_id + " applied index " + std::to_string(entry.index()) + " after " +
         std::to_string(v.applied));
  v.applied = entry.index();
  auto h = std::make_pair(entry.term(), hash_of(entry.data()));
  auto [i, added] = applied_.emplace(entry.index(), h);
  if (!added && i->second != h)
    fail(node_id + " applied a different entry at index " + std::to_string(entry.index()));
}

void invariant_checker::on_restore(const std::string& node_id, uint64_t index) {
  auto& v = nodes_[node_id];
  ++restores;
  if (index < v.applied)
    fail(node_id + " restored a snapshot through " + std::to_string(index) + " after applying " +
         std::to_string(v.applied));
  v.applied = index;
}

// -- cluster ------------------------------------------------------------------------------

cluster::cluster(caf::actor_system& sys, size_t n, uint64_t seed, std::shared_ptr<network> nw,
                 std::function<void(node_config&)> tweak, bool durable)
    : net(std::move(nw)), sys_(sys), seed_(seed), durable_(durable), crash_rng_(seed),
      tweak_(std::move(tweak)) {
  if (!net)
    net = std::make_shared<network>(seed);
  for (size_t i = 1; i <= n; ++i) {
    auto id = "n" + std::to_string(i);
    ids.push_back(id);
    members_.push_back(member{id, "sim/" + id});
    disks[id] = memory_disk(id);
    crash_disks[id] = std::make_shared<crash_disk>();
  }
  for (auto& id : ids)
    spawn(id);
  for (auto& id : ids)
    wire(id);
}

cluster::~cluster() {
  for (auto& [id, n] : nodes)
    caf::anon_send_exit(n, caf::exit_reason::user_shutdown);
  for (auto& w : watchers_)
    caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
  for (auto& [key, l] : links_)
    caf::anon_send_exit(l, caf::exit_reason::user_shutdown);
  for (auto& [id, a] : contacts_)
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  auto& sched = dynamic_cast<caf::scheduler::test_coordinator&>(sys_.scheduler());
  sched.run();
  sys_.clock().cancel_all();
  sched.run();
}

bool cluster::initial_member(const std::string& id) const {
  for (auto& m : members_)
    if (m.id == id)
      return true;
  return false;
}

node_config cluster::config_for(const std::string& id) {
  node_config cfg;
  cfg.id = id;
  cfg.address = "sim/" + id;
  if (initial_member(id))
    cfg.members = members_;
  cfg.seed = seed_ * 1000003 + std::hash<std::string>{}(id) % 1000 + 1;
  if (durable_) {
    durable_options opts;
    opts.dir = "/data/" + id;
    opts.node_id = id;
    opts.cluster_id = "sim";
    opts.segment_bytes = 2048;  // many segments, and snapshots close them (at 256 bytes)
    opts.read_chunk_bytes = 64; // restarts read records that span chunks
    opts.fs = crash_disks.at(id);
    opts.logger_name = "test";
    cfg.storage = std::make_shared<hooked_storage<durable_storage>>(
        [this, id](disk_event ev) { on_disk_event(id, ev); }, std::move(opts));
  } else {
    cfg.storage = disks.at(id);
  }
  cfg.detached_storage = false; // the test scheduler runs everything
  cfg.observer = checker;
  cfg.check_invariants = true;
  cfg.logger_name = "test";
  cfg.max_batch_entries = 8; // small batches exercise pipelining
  cfg.max_inflight = 4;
  // The base feature level: no ENTRY_CLUSTER_LEVEL entries, so that tests count entries as
  // they always did. The tests of feature levels (tests/feature_gate_test.cpp) raise it.
  cfg.feature_level = features::base;
  // Session entries are stamped with virtual time: a run expires the same sessions every time.
  cfg.wall_clock_ms = [&clock = sys_.clock()] {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(clock.now().time_since_epoch())
            .count());
  };
  if (tweak_)
    tweak_(cfg);
  return cfg;
}

void cluster::spawn(const std::string& id) {
  if (!initial_member(id)) { // a node that joined later restarts through the safe join
    auto n = join_cluster(sys_, config_for(id), change_options(std::chrono::seconds{10}));
    if (!n)
      throw std::runtime_error("join_cluster failed: " + render(n.error()));
    nodes[id] = *n;
    watch(id, *n);
    return;
  }
  auto n = spawn_node(sys_, config_for(id));
  if (!n)
    throw std::runtime_error("spawn_node failed: " + render(n.error()));
  nodes[id] = *n;
  watch(id, *n);
}

void cluster::wire(const std::string& id) {
  // Every message between two nodes goes through the link actor of its direction.
  for (auto& other : ids) {
    if (other == id || nodes.count(other) == 0)
      continue;
    auto out = sys_.spawn(link_actor, id, other, nodes[other], net);
    auto in = sys_.spawn(link_actor, other, id, nodes[id], net);
    for (auto key : {std::make_pair(id, other), std::make_pair(other, id)}) {
      auto i = links_.find(key);
      if (i != links_.end())
        caf::anon_send_exit(i->second, caf::exit_reason::user_shutdown);
    }
    links_[{id, other}] = out;
    links_[{other, id}] = in;
    connect_peer(nodes[id], other, out);
    connect_peer(nodes[other], id, in);
  }
}

std::shared_ptr<memory_storage> cluster::memory_disk(const std::string& id) {
  return std::make_shared<hooked_storage<memory_storage>>(
      [this, id](disk_event ev) { on_disk_event(id, ev); });
}

const char* to_string(disk_event e) {
  switch (e) {
  case disk_event::hard_state:
    return "hard_state";
  case disk_event::leader_append:
    return "leader_append";
  case disk_event::follower_append:
    return "follower_append";
  case disk_event::config_entry:
    return "config_entry";
  case disk_event::snapshot_install:
    return "snapshot_install";
  case disk_event::snapshot_chunk:
    return "snapshot_chunk";
  case disk_event::snapshot_save:
    return "snapshot_save";
  }
  return "?";
}

void cluster::on_disk_event(const std::string& id, disk_event ev) {
  if (ev == disk_event::follower_append) {
    auto r = checker->roles.find(id);
    if (r != checker->roles.end() && r->second == role_kind::leader)
      ev = disk_event::leader_append;
  }
  auto p = worst_moments.probability.find(ev);
  if (p == worst_moments.probability.end() || p->second <= 0 || !nodes.count(id) ||
      failing_.count(id))
    return;
  ++crashes.disk_events[ev];
  size_t up = 0;
  for (auto& [other, ignored] : nodes)
    up += other != id && failing_.count(other) == 0;
  std::uniform_real_distribution<double> coin{0.0, 1.0};
  if (up < worst_moments.min_up || coin(crash_rng_) >= p->second)
    return;
  failing_.insert(id);
  ++crashes.timed[ev];
  if (durable_) {
    // Within the next few operations: before the write, in its middle or just after.
    crash_disks.at(id)->crash_at_op(crash_rng_() % 3);
    return;
  }
  lost_in_memory_.insert(id);
  throw std::runtime_error("simulated power failure"); // the write in hand never happens
}

void cluster::power_fail(const std::string& id) {
  if (durable_ && failing_.insert(id).second)
    crash_disks.at(id)->crash_at_op(crash_rng_() % 8);
}

void cluster::stop(const std::string& id) {
  bool failed = failing_.erase(id) > 0;
  if (durable_ && !failed) // the node's last writes may be under way
    crash_disks.at(id)->crash_at_op(crash_rng_() % 4);
  caf::anon_send_exit(nodes.at(id), caf::exit_reason::kill);
  nodes.erase(id);
  checker->forget_volatile(id);
}

void cluster::restart(const std::string& id) {
  ++crashes.restarts;
  if (durable_) {
    auto& disk = *crash_disks.at(id);
    crashes.lost_writes += disk.pending() > 0 || disk.power_failed();
    crash_disks[id] = disk.crash(crash_rng_);
  } else {
    crashes.lost_writes += lost_in_memory_.erase(id);
  }
  spawn(id);
  wire(id);
}

void cluster::watch(const std::string& id, const caf::actor& node) {
  exits->erase(id);
  auto out = exits;
  watchers_.push_back(sys_.spawn([out, id, node](caf::event_based_actor* self) -> caf::behavior {
    self->monitor(node);
    self->set_down_handler([=](caf::down_msg& dm) {
      (*out)[id] = dm.reason;
      self->quit();
    });
    return {[](int) {}};
  }));
}

change_client_options cluster::change_options(caf::timespan timeout) {
  change_client_options o;
  for (auto& [id, n] : nodes) {
    auto& contact = contacts_[id];
    if (!contact)
      contact = sys_.spawn([this, id = id](caf::event_based_actor* self) -> caf::behavior {
        self->set_default_handler(
            [this, id](caf::scheduled_actor* s, caf::message_view& x) -> caf::result<caf::message> {
              auto i = nodes.find(id);
              if (i == nodes.end())
                return make_error(errc::unreachable, id + " is not running");
              return s->delegate(i->second, x.move_content_to_message());
            });
        return {[](int) {}};
      });
    o.contacts.push_back(contact);
    o.contact_addresses.push_back("sim/" + id);
  }
  o.resolve = [this](const std::string& id, const std::string&) {
    auto i = nodes.find(id);
    return i == nodes.end() ? caf::actor{} : i->second;
  };
  o.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(timeout);
  o.attempt_timeout = std::min(o.timeout, std::chrono::milliseconds{1000});
  return o;
}

caf::actor cluster::changer(caf::timespan timeout) {
  return spawn_change_client(sys_, change_options(timeout));
}

caf::actor cluster::join(const std::string& id, caf::timespan timeout) {
  if (std::find(ids.begin(), ids.end(), id) == ids.end()) {
    ids.push_back(id);
    disks[id] = memory_disk(id);
    crash_disks[id] = std::make_shared<crash_disk>();
  }
  auto n = join_cluster(sys_, config_for(id), change_options(timeout));
  if (!n)
    throw std::runtime_error("join_cluster failed: " + render(n.error()));
  nodes[id] = *n;
  watch(id, *n);
  wire(id);
  return *n;
}

void cluster::wipe(const std::string& id) {
  checker->forget_node(id);
  lost_in_memory_.erase(id);
  disks[id] = memory_disk(id);
  crash_disks[id] = std::make_shared<crash_disk>();
}

void cluster::forget(const std::string& id) {
  nodes.erase(id);
  failing_.erase(id);
  checker->forget_volatile(id);
}

// -- driver -------------------------------------------------------------------------------

driver::driver(caf::actor_system& sys, uint64_t seed, bool random)
    : sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())), rng(seed),
      random_order(random) {}

size_t driver::run(size_t max) {
  size_t n = 0;
  while (sched.has_job() && n < max) {
    if (random_order && sched.jobs.size() > 1) {
      auto i = static_cast<std::ptrdiff_t>(rng() % sched.jobs.size());
      std::rotate(sched.jobs.begin(), sched.jobs.begin() + i, sched.jobs.begin() + i + 1);
    }
    sched.run_once();
    ++n;
  }
  return n;
}

void driver::advance(std::chrono::milliseconds d, std::chrono::milliseconds step) {
  for (auto t = 0ms; t < d; t += step) {
    run();
    sched.advance_time(step);
  }
  run();
}

std::map<std::string, pb::NodeStatus> statuses(cluster& c, driver& d) {
  std::map<std::string, std::shared_ptr<outcome<pb::NodeStatus>>> pending;
  for (auto& [id, n] : c.nodes)
    pending[id] = c.ask<pb::NodeStatus>(id, status_atom::value);
  d.run_until(
      [&] {
        for (auto& [id, o] : pending)
          if (!o->done)
            return false;
        return true;
      },
      2000ms);
  std::map<std::string, pb::NodeStatus> out;
  for (auto& [id, o] : pending)
    if (o->done && o->value)
      out[id] = *o->value;
  return out;
}

std::string agreed_leader(cluster& c, driver& d) {
  auto st = statuses(c, d);
  if (st.size() != c.nodes.size())
    return {};
  std::string leader;
  uint64_t term = 0;
  for (auto& [id, s] : st)
    if (s.role() == "leader") {
      if (!leader.empty())
        return {};
      leader = id;
      term = s.term();
    }
  if (leader.empty())
    return {};
  for (auto& [id, s] : st)
    if (s.term() != term || s.leader_id() != leader)
      return {};
  return leader;
}

pb::PutRequest put(const std::string& key, const std::string& value) {
  pb::PutRequest req;
  req.set_key(key);
  req.set_value(value);
  return req;
}

pb::GetRequest get(const std::string& key, bool stale) {
  pb::GetRequest req;
  req.set_key(key);
  req.set_stale(stale);
  return req;
}

} // namespace cafraft::test
