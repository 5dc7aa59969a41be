#include "apps/commands.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include <spdlog/spdlog.h>

#include <cafraft/runtime/backup.hpp>
#include <cafraft/runtime/logging.hpp>

namespace cafraft::cli {

namespace {

using namespace std::chrono_literals;

std::string str(uint64_t x) {
  return std::to_string(x);
}

json write_json(const pb::WriteResponse& w) {
  auto j = json{{"index", str(w.index())}, {"term", str(w.term())}};
  if (w.duplicate()) // a retry the session table answered: an earlier attempt applied it
    j["duplicate"] = true;
  return j;
}

void print_written(const pb::WriteResponse& w) {
  std::printf("OK (index %llu, term %llu%s)\n", static_cast<unsigned long long>(w.index()),
              static_cast<unsigned long long>(w.term()),
              w.duplicate() ? ", applied by an earlier attempt" : "");
}

template <class Req> int write(session& s, const Req& req) {
  bool reached = false;
  auto w = s.client().write(req, reached);
  if (!w)
    return s.fail(w.error(), reached);
  if (s.json_out())
    print_json(write_json(*w));
  else
    print_written(*w);
  return exit_ok;
}

std::string role_of(const pb::NodeStatus& st) {
  for (auto& m : st.members())
    if (m.id() == st.id() && m.learner() && st.role() == "follower")
      return "learner";
  return st.role();
}

int membership_change(session& s, const caf::message& req) {
  auto r = s.client().change(req);
  bool reached = r || !remote_client::is(r.error(), errc::unreachable);
  if (!r)
    return s.fail(r.error(), reached);
  if (s.json_out()) {
    json arr = json::array();
    for (auto& m : r->members())
      arr.push_back(json{{"id", m.id()}, {"address", m.address()}, {"voter", !m.learner()}});
    print_json(json{{"config_index", str(r->config_index())}, {"members", arr}});
    return exit_ok;
  }
  std::printf("OK: configuration at index %llu:\n",
              static_cast<unsigned long long>(r->config_index()));
  for (auto& m : r->members())
    std::printf("  %s %s %s\n", m.id().c_str(), m.address().c_str(),
                m.learner() ? "learner" : "voter");
  return exit_ok;
}

int print_leader(session& s, const pb::LeaderInfo& r, const char* prefix) {
  if (s.json_out())
    print_json(json{{"id", r.id()}, {"address", r.address()}, {"term", str(r.term())}});
  else
    std::printf("%s%s %s (term %llu)\n", prefix, r.id().c_str(), r.address().c_str(),
                static_cast<unsigned long long>(r.term()));
  return exit_ok;
}

} // namespace

std::string check(session_options& o, const std::string& endpoint_list) {
  if (auto why = parse_endpoints(endpoint_list, o.endpoints); !why.empty())
    return "--endpoints " + why;
  if (o.endpoints.empty())
    return "--endpoints is empty";
  bool any_tls = !o.tls_cert.empty() || !o.tls_key.empty() || !o.tls_ca.empty();
  if (any_tls && (o.tls_cert.empty() || o.tls_key.empty() || o.tls_ca.empty()))
    return "TLS needs all of --tls-cert, --tls-key and --tls-ca";
  if (any_tls)
    if (auto why = check_tls_files(o.tls_cert, o.tls_key, o.tls_ca); !why.empty())
      return why;
  if (o.timeout_ms <= 0)
    return "--timeout-ms must be positive";
  return {};
}

session::session(const session_options& o)
    : opts_(o), cfg_(), sys_(cfg_),
      client_(sys_, o.endpoints, tls_files{o.tls_cert, o.tls_key, o.tls_ca, {}},
              std::chrono::milliseconds{o.timeout_ms}) {
  get_logger("cafraft-client")->set_level(spdlog::level::off);
  client_.use_group(o.group);
}

std::optional<pb::NodeStatus> session::view() {
  for (auto& e : opts_.endpoints) {
    auto st = client_.ask<pb::NodeStatus>(e, status_atom::value, 2000ms);
    if (!st)
      continue;
    if (!st->leader_address().empty() && st->leader_id() != st->id())
      if (auto l = client_.ask<pb::NodeStatus>(st->leader_address(), status_atom::value, 2000ms))
        return *l;
    return *st;
  }
  return std::nullopt;
}

int session::fail(const caf::error& e, bool reached) const {
  std::fprintf(stderr, "%s: %s\n", opts_.program.c_str(), render(e).c_str());
  return reached ? exit_failed : exit_unreachable;
}

int put(session& s, const std::string& key, const std::string& value) {
  pb::PutRequest req;
  req.set_key(key);
  req.set_value(value);
  return write(s, req);
}

int del(session& s, const std::string& key) {
  pb::DeleteRequest req;
  req.set_key(key);
  return write(s, req);
}

std::string prefix_end(const std::string& prefix) {
  auto end = prefix;
  while (!end.empty()) {
    auto last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

int get(session& s, const std::string& key, const get_options& opts) {
  pb::GetRequest req;
  req.set_key(key);
  req.set_policy(opts.read == "stale"      ? pb::READ_STALE
                 : opts.read == "lease"    ? pb::READ_LEASE
                 : opts.read == "follower" ? pb::READ_FOLLOWER
                                           : pb::READ_LINEARIZABLE);
  req.set_min_index(opts.min_index);
  bool range = opts.prefix || !opts.range_end.empty();
  if (opts.prefix)
    req.set_range_end(prefix_end(key));
  else if (range)
    req.set_range_end(opts.range_end);
  req.set_limit(opts.limit);
  bool reached = false;
  auto r = s.client().call<pb::GetResponse>(req, reached);
  if (!r)
    return s.fail(r.error(), reached);
  if (range) {
    if (s.json_out()) {
      json kvs = json::array();
      for (auto& kv : r->kvs())
        kvs.push_back(json{{"key", kv.key()}, {"value", kv.value()}});
      print_json(
          json{{"kvs", kvs}, {"more", r->more()}, {"applied_index", str(r->applied_index())}});
    } else {
      for (auto& kv : r->kvs())
        std::printf("%s\n%s\n", kv.key().c_str(), kv.value().c_str());
    }
    return exit_ok;
  }
  if (s.json_out())
    print_json(json{{"key", key},
                    {"found", r->found()},
                    {"value", r->value()},
                    {"applied_index", str(r->applied_index())}});
  if (!r->found()) {
    std::fprintf(stderr, "key not found\n");
    return exit_failed;
  }
  if (!s.json_out())
    std::printf("%s\n", r->value().c_str());
  return exit_ok;
}

namespace {

/// What a watcher actor hands the printing thread: a batch, or that the connection broke.
struct watch_feed {
  std::mutex mtx;
  std::condition_variable cv;
  std::deque<pb::WatchBatch> batches;
  bool lost = false;
};

/// The watcher of one watch: it passes the batches on, and asks `dialer` to tell it when the
/// connection breaks (actors/peer.hpp).
caf::actor spawn_watcher(caf::actor_system& sys, std::shared_ptr<watch_feed> feed,
                         caf::actor dialer) {
  return sys.spawn([feed, dialer](caf::event_based_actor* self) -> caf::behavior {
    self->send(dialer, connection_watch_atom::value);
    auto push = [feed](pb::WatchBatch b) {
      std::lock_guard<std::mutex> guard{feed->mtx};
      feed->batches.push_back(std::move(b));
      feed->cv.notify_one();
    };
    return {
        [push](pb::WatchBatch& b) { push(std::move(b)); },
        [feed](connection_lost_atom, const caf::actor&) {
          std::lock_guard<std::mutex> guard{feed->mtx};
          feed->lost = true;
          feed->cv.notify_one();
        },
    };
  });
}

} // namespace

int watch(session& s, const std::string& key, const watch_options& opts) {
  pb::WatchRequest req;
  req.set_key(key);
  req.set_range_end(opts.prefix ? prefix_end(key) : opts.range_end);
  uint64_t next = opts.from; // resumes here
  uint64_t printed = 0;
  auto& eps = s.client().endpoints();
  size_t ep = 0, failures = 0;
  bool reached = false;
  caf::error last = make_error(errc::unreachable, "no endpoint answered");
  while (failures < 2 * eps.size()) {
    auto& address = eps[ep % eps.size()];
    auto dialer = s.client().connect(address);
    if (!dialer) {
      ++ep;
      ++failures;
      continue;
    }
    auto feed = std::make_shared<watch_feed>();
    auto watcher = spawn_watcher(s.system(), feed, dialer);
    req.set_from_index(next);
    caf::expected<pb::WatchStarted> started{caf::error{}};
    {
      caf::scoped_actor self{s.system()};
      self->request(dialer, std::chrono::milliseconds{s.opts().timeout_ms}, watch_atom::value, req,
                    watcher)
          .receive([&](pb::WatchStarted& w) { started = std::move(w); },
                   [&](caf::error& e) { started = std::move(e); });
    }
    if (!started) {
      last = started.error();
      caf::anon_send_exit(watcher, caf::exit_reason::user_shutdown);
      if (remote_client::is(last, errc::compacted))
        return s.fail(last, true);
      ++ep;
      ++failures;
      continue;
    }
    reached = true;
    failures = 0;
    bool resume = false;
    for (;;) {
      std::unique_lock<std::mutex> lock{feed->mtx};
      feed->cv.wait_for(lock, std::chrono::milliseconds{200},
                        [&] { return !feed->batches.empty() || feed->lost; });
      if (feed->batches.empty()) {
        if (feed->lost) {
          resume = true;
          break;
        }
        continue;
      }
      auto b = std::move(feed->batches.front());
      feed->batches.pop_front();
      lock.unlock();
      for (auto& ev : b.events()) {
        if (s.json_out()) {
          auto j = json{{"index", str(ev.index())}, {"key", ev.key()}};
          if (ev.deleted())
            j["deleted"] = true;
          else
            j["value"] = ev.value();
          std::printf("%s\n", j.dump().c_str());
        } else if (ev.deleted()) {
          std::printf("%llu DELETE %s\n", static_cast<unsigned long long>(ev.index()),
                      ev.key().c_str());
        } else {
          std::printf("%llu PUT %s %s\n", static_cast<unsigned long long>(ev.index()),
                      ev.key().c_str(), ev.value().c_str());
        }
        std::fflush(stdout);
        next = ev.index() + 1;
        if (opts.count > 0 && ++printed >= opts.count) {
          caf::anon_send_exit(watcher, caf::exit_reason::user_shutdown);
          return exit_ok;
        }
      }
      if (b.error() != 0) {
        auto e = from_pb([&] {
          pb::BatchError be;
          be.set_code(b.error());
          be.set_detail(b.detail());
          return be;
        }());
        next = b.last_index() + 1;
        if (b.error() == static_cast<uint32_t>(errc::watch_overflow)) {
          std::fprintf(stderr, "%s: %s; resuming from index %llu\n", s.opts().program.c_str(),
                       render(e).c_str(), static_cast<unsigned long long>(next));
          resume = true;
          break;
        }
        caf::anon_send_exit(watcher, caf::exit_reason::user_shutdown);
        return s.fail(e, true);
      }
    }
    caf::anon_send_exit(watcher, caf::exit_reason::user_shutdown);
    if (resume && feed->lost) {
      std::fprintf(stderr, "%s: the connection to %s broke; resuming from index %llu\n",
                   s.opts().program.c_str(), address.c_str(),
                   static_cast<unsigned long long>(next));
      ++ep;
    }
  }
  return s.fail(last, reached);
}

int cas(session& s, const std::string& key, const std::string& expected, const std::string& value,
        bool expect_absent) {
  pb::CasRequest req;
  req.set_key(key);
  req.set_expected(expected);
  req.set_value(value);
  req.set_expect_absent(expect_absent);
  bool reached = false;
  auto w = s.client().write(req, reached);
  if (!w)
    return s.fail(w.error(), reached);
  pb::KvResult res;
  res.ParseFromString(w->result());
  if (s.json_out()) {
    auto j = write_json(*w);
    j["swapped"] = !res.compare_failed();
    j["current"] = res.compare_failed() && res.existed() ? json(res.previous()) : json();
    print_json(j);
  }
  if (res.compare_failed()) {
    if (res.existed())
      std::fprintf(stderr, "compare failed: current value is \"%s\"\n", res.previous().c_str());
    else
      std::fprintf(stderr, "compare failed: key does not exist\n");
    return exit_failed;
  }
  if (!s.json_out())
    print_written(*w);
  return exit_ok;
}

int member_list(session& s) {
  auto view = s.view();
  if (!view) {
    std::fprintf(stderr, "%s: no endpoint reachable\n", s.opts().program.c_str());
    return exit_unreachable;
  }
  bool healthy = true;
  uint64_t leader_commit = view->role() == "leader" ? view->commit_index() : 0;
  std::vector<std::vector<std::string>> rows{
      {"ID", "ADDRESS", "ROLE", "VOTER", "TERM", "COMMIT", "APPLIED", "LAG", "ERROR"}};
  json arr = json::array();
  for (auto& m : view->members()) {
    auto st = s.client().ask<pb::NodeStatus>(m.address(), status_atom::value, 2000ms);
    json j{{"id", m.id()}, {"address", m.address()}, {"voter", !m.learner()}};
    if (!st) {
      healthy = false;
      auto why = render(st.error());
      rows.push_back({m.id(), m.address(), "unreachable", m.learner() ? "learner" : "voter", "-",
                      "-", "-", "-", why});
      j["role"] = "unreachable";
      j["error"] = why;
    } else {
      auto lag = leader_commit > st->applied_index() ? leader_commit - st->applied_index() : 0;
      rows.push_back({m.id(), m.address(), role_of(*st), m.learner() ? "learner" : "voter",
                      str(st->term()), str(st->commit_index()), str(st->applied_index()), str(lag),
                      ""});
      j["role"] = role_of(*st);
      j["term"] = str(st->term());
      j["commit_index"] = str(st->commit_index());
      j["applied_index"] = str(st->applied_index());
      j["lag"] = str(lag);
      j["feature_level"] = st->feature_level();
      j["cluster_level"] = st->cluster_level();
      j["quiesced"] = st->quiesced();
    }
    arr.push_back(j);
  }
  if (s.json_out())
    print_json(json{{"members", arr}});
  else
    print_table(rows);
  return healthy ? exit_ok : exit_failed;
}

int member_add(session& s, const std::string& id, const std::string& address) {
  std::string host;
  uint16_t port = 0;
  if (!split_address(address, host, port)) {
    std::fprintf(stderr, "%s: ADDRESS must be HOST:PORT, not '%s'\n", s.opts().program.c_str(),
                 address.c_str());
    return exit_usage;
  }
  pb::JoinRequest req;
  req.set_id(id);
  req.set_address(address);
  return membership_change(s, caf::make_message(req));
}

int member_remove(session& s, const std::string& id) {
  pb::LeaveRequest req;
  req.set_id(id);
  return membership_change(s, caf::make_message(req));
}

int leader(session& s) {
  bool reached = false;
  auto r = s.client().call<pb::LeaderInfo>(leader_atom::value, reached);
  if (!r)
    return s.fail(r.error(), reached);
  return print_leader(s, *r, "");
}

int leader_transfer(session& s, const std::string& id) {
  pb::TransferLeadershipRequest req;
  req.set_target(id);
  bool reached = false;
  auto r = s.client().call<pb::LeaderInfo>(req, reached);
  if (!r)
    return s.fail(r.error(), reached);
  return print_leader(s, *r, "leadership handed to ");
}

int status(session& s) {
  std::vector<std::vector<std::string>> rows{
      {"ENDPOINT", "ID", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "LAST", "ERROR"}};
  json arr = json::array();
  size_t reached = 0;
  for (auto& e : s.opts().endpoints) {
    auto st = s.client().ask<pb::NodeStatus>(e, status_atom::value, 2000ms);
    if (!st) {
      auto why = render(st.error());
      rows.push_back({e, "-", "unreachable", "-", "-", "-", "-", "-", why});
      arr.push_back(json{{"endpoint", e}, {"role", "unreachable"}, {"error", why}});
      continue;
    }
    ++reached;
    rows.push_back({e, st->id(), role_of(*st), str(st->term()),
                    st->leader_id().empty() ? "-" : st->leader_id(), str(st->commit_index()),
                    str(st->applied_index()), str(st->last_log_index()), ""});
    arr.push_back(json{{"endpoint", e},
                       {"id", st->id()},
                       {"role", role_of(*st)},
                       {"term", str(st->term())},
                       {"leader", st->leader_id()},
                       {"commit_index", str(st->commit_index())},
                       {"applied_index", str(st->applied_index())},
                       {"last_log_index", str(st->last_log_index())}});
  }
  if (s.json_out())
    print_json(json{{"endpoints", arr}});
  else
    print_table(rows);
  if (reached == 0)
    return exit_unreachable;
  return reached == s.opts().endpoints.size() ? exit_ok : exit_failed;
}

namespace {

/// The groups of the endpoints' processes, each as its replica with the highest term (a leader
/// first) sees it, with its highest applied index and how many replicas answered.
struct group_view {
  std::map<uint64_t, pb::NodeStatus> best;
  std::map<uint64_t, std::pair<uint64_t, size_t>> applied; // highest applied index, replicas
  size_t reached = 0;                                      // endpoints that answered
  caf::error last;
};

group_view view_groups(session& s) {
  group_view v;
  auto& [best, applied, reached, last] = v;
  for (auto& e : s.opts().endpoints) {
    auto list = s.client().ask<pb::GroupList>(e, groups_atom::value, 3000ms);
    if (!list) {
      last = list.error();
      continue;
    }
    ++reached;
    for (auto& g : list->groups()) {
      auto& a = applied[g.group()];
      a.first = std::max(a.first, g.applied_index());
      ++a.second;
      auto [i, fresh] = best.emplace(g.group(), g);
      if (!fresh &&
          (g.term() > i->second.term() || (g.term() == i->second.term() && g.role() == "leader")))
        i->second = g;
    }
  }
  return v;
}

} // namespace

int group_list(session& s) {
  auto v = view_groups(s);
  auto& [best, applied, reached, last] = v;
  if (reached == 0)
    return s.fail(last ? last : make_error(errc::unreachable, "no endpoint answered"), false);
  std::vector<std::vector<std::string>> rows{
      {"GROUP", "LEADER", "TERM", "MEMBERS", "APPLIED", "REPLICAS", "QUIESCED"}};
  json arr = json::array();
  for (auto& [id, st] : best) {
    std::string members;
    json mj = json::array();
    for (auto& m : st.members()) {
      members += (members.empty() ? "" : ",") + m.id() + (m.learner() ? "(learner)" : "");
      mj.push_back(json{{"id", m.id()}, {"address", m.address()}, {"voter", !m.learner()}});
    }
    auto [app, replicas] = applied[id];
    rows.push_back({str(id), st.leader_id().empty() ? "-" : st.leader_id(), str(st.term()), members,
                    str(app), str(replicas), st.quiesced() ? "yes" : "no"});
    arr.push_back(json{{"group", str(id)},
                       {"leader", st.leader_id()},
                       {"leader_address", st.leader_address()},
                       {"term", str(st.term())},
                       {"members", mj},
                       {"applied_index", str(app)},
                       {"replicas", replicas},
                       {"quiesced", st.quiesced()}});
  }
  if (s.json_out())
    print_json(json{{"groups", arr}});
  else
    print_table(rows);
  return reached == s.opts().endpoints.size() ? exit_ok : exit_failed;
}

int balance(session& s) {
  auto v = view_groups(s);
  if (v.reached == 0)
    return s.fail(v.last ? v.last : make_error(errc::unreachable, "no endpoint answered"), false);
  auto own = v.best.find(0);
  if (own == v.best.end()) {
    std::fprintf(stderr, "%s: no process answered for its own group 0\n", s.opts().program.c_str());
    return exit_failed;
  }
  // Leaders per voter of the processes' own group.
  std::map<std::string, size_t> led;
  for (auto& m : own->second.members())
    if (!m.learner())
      led[m.id()] = 0;
  size_t leaderless = 0;
  for (auto& [id, g] : v.best) {
    if (g.leader_id().empty())
      ++leaderless;
    else if (led.count(g.leader_id()) > 0)
      ++led[g.leader_id()];
  }
  std::vector<std::vector<std::string>> rows{{"GROUP", "FROM", "TO", "RESULT"}};
  json moves = json::array();
  bool all = true;
  std::set<uint64_t> tried;
  for (;;) {
    // The busiest process hands one of its groups to the least busy voter of that group, as
    // long as that narrows the gap.
    auto busiest = std::max_element(led.begin(), led.end(),
                                    [](auto& a, auto& b) { return a.second < b.second; });
    if (busiest == led.end())
      break;
    uint64_t group = 0;
    std::string to;
    for (auto& [id, g] : v.best) {
      if (g.leader_id() != busiest->first || tried.count(id) > 0)
        continue;
      for (auto& m : g.members()) {
        auto c = led.find(m.id());
        if (m.learner() || c == led.end() || c->second + 1 >= busiest->second)
          continue;
        if (to.empty() || c->second < led[to]) {
          to = m.id();
          group = id;
        }
      }
      if (!to.empty())
        break;
    }
    if (to.empty())
      break;
    tried.insert(group);
    pb::TransferLeadershipRequest req;
    req.set_target(to);
    s.client().use_group(group);
    bool reached = false;
    auto r = s.client().call<pb::LeaderInfo>(req, reached);
    std::string result = "moved";
    if (!r || r->id() != to) {
      all = false;
      result = r ? "led by " + r->id() + " instead" : render(r.error());
    } else {
      --busiest->second;
      ++led[to];
    }
    rows.push_back({str(group), busiest->first, to, result});
    moves.push_back(
        json{{"group", str(group)}, {"from", busiest->first}, {"to", to}, {"result", result}});
  }
  s.client().use_group(s.opts().group);
  json counts = json::object();
  std::string summary;
  for (auto& [id, n] : led) {
    counts[id] = n;
    summary += (summary.empty() ? "" : ", ") + id + " " + std::to_string(n);
  }
  if (s.json_out()) {
    print_json(json{{"moves", moves}, {"leaders", counts}, {"leaderless", leaderless}});
  } else {
    if (rows.size() > 1)
      print_table(rows);
    if (leaderless > 0)
      summary += ", " + std::to_string(leaderless) + " without a leader";
    std::printf("groups led: %s\n", summary.c_str());
  }
  return all && leaderless == 0 ? exit_ok : exit_failed;
}

namespace {

/// Asks `req` of the process of every member in `targets`, after which each must list `group`
/// (`listed`) or not; prints one row each.
template <class Req>
int ask_each_process(session& s, const std::vector<pb::Member>& targets, const Req& req,
                     uint64_t group, bool listed, const char* done) {
  std::vector<std::vector<std::string>> rows{{"MEMBER", "ADDRESS", "RESULT"}};
  json arr = json::array();
  bool all = true;
  for (auto& m : targets) {
    auto r = s.client().ask<pb::GroupList>(m.address(), req, 10000ms);
    std::string result = done;
    if (!r) {
      all = false;
      result = render(r.error());
    } else if (std::any_of(r->groups().begin(), r->groups().end(),
                           [&](const pb::NodeStatus& g) { return g.group() == group; }) != listed) {
      all = false;
      result = "not done: its process lists the group as it was";
    }
    rows.push_back({m.id(), m.address(), result});
    arr.push_back(json{
        {"member", m.id()}, {"address", m.address()}, {"ok", result == done}, {"result", result}});
  }
  if (s.json_out())
    print_json(json{{"group", str(group)}, {"processes", arr}});
  else
    print_table(rows);
  return all ? exit_ok : exit_failed;
}

} // namespace

int group_create(session& s, uint64_t group, const std::string& members) {
  s.client().use_group(0); // the processes' own group knows their members
  auto view = s.view();
  if (!view) {
    std::fprintf(stderr, "%s: no endpoint reachable\n", s.opts().program.c_str());
    return exit_unreachable;
  }
  std::vector<pb::Member> chosen;
  if (members.empty()) {
    chosen.assign(view->members().begin(), view->members().end());
  } else {
    size_t at = 0;
    while (at <= members.size()) {
      auto comma = std::min(members.find(',', at), members.size());
      auto id = members.substr(at, comma - at);
      auto m = std::find_if(view->members().begin(), view->members().end(),
                            [&](const pb::Member& x) { return x.id() == id; });
      if (m == view->members().end()) {
        std::fprintf(stderr, "%s: %s is no member of the processes' own group (member list)\n",
                     s.opts().program.c_str(), id.c_str());
        return exit_usage;
      }
      chosen.push_back(*m);
      at = comma + 1;
    }
  }
  pb::CreateGroupRequest req;
  req.set_group(group);
  for (auto& m : chosen) {
    auto& x = *req.add_members();
    x.set_id(m.id());
    x.set_address(m.address());
  }
  return ask_each_process(s, chosen, req, group, true, "started");
}

int group_remove(session& s, uint64_t group) {
  s.client().use_group(0);
  auto view = s.view();
  if (!view) {
    std::fprintf(stderr, "%s: no endpoint reachable\n", s.opts().program.c_str());
    return exit_unreachable;
  }
  pb::RemoveGroupRequest req;
  req.set_group(group);
  std::vector<pb::Member> all{view->members().begin(), view->members().end()};
  return ask_each_process(s, all, req, group, false, "removed");
}

void print_json(const json& j) {
  std::printf("%s\n", j.dump(2, ' ', false, json::error_handler_t::replace).c_str());
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      width.resize(std::max(width.size(), r.size()));
      width[i] = std::max(width[i], r[i].size());
    }
  for (auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size())
        line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
}

int snapshot_save(session& s, const std::string& file) {
  auto timeout = std::chrono::milliseconds{s.opts().timeout_ms};
  auto leader = s.view(); // the leader's own status when one is known
  if (!leader)
    return s.fail(make_error(errc::unreachable, "no endpoint answered"), false);
  if (leader->role() != "leader")
    return s.fail(make_error(errc::unknown_leader, "no leader is known: try again"), true);
  std::string address;
  for (auto& m : leader->members())
    if (m.id() == leader->id())
      address = m.address();
  auto meta = s.client().ask<pb::SnapshotMeta>(address, pb::SnapshotNowRequest{}, timeout * 4);
  if (!meta)
    return s.fail(meta.error(), true);
  pb::BackupHeader header;
  std::optional<backup::writer> out;
  try {
    uint64_t offset = 0;
    while (!out || offset < meta->size()) {
      pb::SnapshotReadRequest req;
      req.set_offset(offset);
      req.set_max(1u << 20);
      auto chunk = s.client().ask<pb::SnapshotChunk>(address, req, timeout);
      if (!chunk)
        return s.fail(chunk.error(), true);
      if (chunk->meta().index() != meta->index())
        return s.fail(
            make_error(errc::invalid_request, "snapshot " + std::to_string(meta->index()) +
                                                  " was replaced while it was read: try again"),
            true);
      if (!out) {
        *header.mutable_meta() = chunk->meta();
        header.set_cluster_id(chunk->cluster_id());
        header.set_node_id(chunk->node_id());
        header.set_created_unix_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count());
        out.emplace(file, header);
      }
      if (chunk->data().empty() && offset < meta->size())
        return s.fail(make_error(errc::invalid_request, "the snapshot ended early"), true);
      out->append(chunk->data());
      offset += chunk->data().size();
    }
    out->finish();
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "%s: %s\n", s.opts().program.c_str(), ex.what());
    return exit_failed;
  }
  if (s.json_out())
    print_json(json{{"file", file},
                    {"index", str(meta->index())},
                    {"term", str(meta->term())},
                    {"bytes", str(meta->size())},
                    {"from", header.node_id()}});
  else
    std::printf("saved snapshot at index %llu (term %llu, %llu bytes) from %s to %s\n",
                static_cast<unsigned long long>(meta->index()),
                static_cast<unsigned long long>(meta->term()),
                static_cast<unsigned long long>(meta->size()), header.node_id().c_str(),
                file.c_str());
  return exit_ok;
}

int snapshot_status(const std::string& program, const std::string& file, bool json_out) {
  try {
    backup::reader in{file};
    auto& h = in.header();
    if (json_out) {
      json members = json::array();
      for (auto& m : h.meta().members())
        members.push_back(json{{"id", m.id()}, {"address", m.address()}});
      print_json(json{{"file", file},
                      {"ok", true},
                      {"format", h.format()},
                      {"cluster_id", h.cluster_id()},
                      {"node_id", h.node_id()},
                      {"created_unix_ms", str(static_cast<uint64_t>(h.created_unix_ms()))},
                      {"index", str(h.meta().index())},
                      {"term", str(h.meta().term())},
                      {"members", members},
                      {"bytes", str(h.meta().size())}});
    } else {
      std::printf("%s: ok\n%s", file.c_str(), backup::describe(h).c_str());
    }
    return exit_ok;
  } catch (const std::exception& ex) {
    if (json_out)
      print_json(json{{"file", file}, {"ok", false}, {"error", ex.what()}});
    std::fprintf(stderr, "%s: %s\n", program.c_str(), ex.what());
    return exit_failed;
  }
}

} // namespace cafraft::cli
