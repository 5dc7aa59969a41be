// cafraftctl: the command-line client of a cafraft cluster (README: "Run a cluster").
//
//   cafraftctl --endpoints HOST:PORT[,HOST:PORT...] [-w table|json] COMMAND
//
// It tries the endpoints in turn and follows not_leader redirects itself. Exit codes: 0 ok,
// 1 usage, 2 failed or unhealthy, 3 no endpoint reachable.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/peer.hpp"
#include "actors/remote_client.hpp"
#include "apps/network.hpp"
#include "messages/api.hpp"
#include "messages/register.hpp"
#include "runtime/logging.hpp"

using namespace std::chrono_literals;
using json = nlohmann::ordered_json;

namespace {

constexpr int exit_ok = 0, exit_usage = 1, exit_failed = 2, exit_unreachable = 3;

struct options {
  std::vector<std::string> endpoints;
  std::string format = "table";
  int timeout_ms = 5000;
  std::string tls_cert, tls_key, tls_ca;
};

std::string str(uint64_t x) {
  return std::to_string(x);
}

// One session: the actor system and a client that dials the endpoints.
class session {
public:
  explicit session(const options& o)
      : opts_(o), cfg_(o.tls_cert, o.tls_key, o.tls_ca), sys_(cfg_),
        client_(sys_, o.endpoints, !o.tls_cert.empty(), std::chrono::milliseconds{o.timeout_ms}) {
    cafraft::get_logger("cafraft-client")->set_level(spdlog::level::off);
  }

  template <class Resp, class Req>
  caf::expected<Resp> ask(const std::string& address, const Req& req,
                          std::chrono::milliseconds timeout) {
    return client_.ask<Resp>(address, req, timeout);
  }
  template <class Resp, class Req> caf::expected<Resp> call(const Req& req, bool& reached) {
    return client_.call<Resp>(req, reached);
  }
  caf::expected<cafraft::pb::MembershipResponse> change(const caf::message& req, bool& reached) {
    auto r = client_.change(req);
    reached = r || !cafraft::remote_client::is(r.error(), cafraft::errc::unreachable);
    return r;
  }
  const options& opts() const { return opts_; }

private:
  options opts_;
  cafraft::network_config cfg_;
  caf::actor_system sys_;
  cafraft::remote_client client_;
};

int fail(const caf::error& e, bool reached) {
  std::fprintf(stderr, "cafraftctl: %s\n", cafraft::render(e).c_str());
  return reached ? exit_failed : exit_unreachable;
}

void print_json(const json& j) {
  std::printf("%s\n", j.dump(2).c_str());
}

// Prints rows as aligned columns.
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

json write_json(const cafraft::pb::WriteResponse& w) {
  return json{{"index", str(w.index())}, {"term", str(w.term())}};
}

int do_write(session& s, const caf::message& req, bool json_out) {
  bool reached = false;
  caf::expected<cafraft::pb::WriteResponse> w{caf::error{}};
  if (req.match_elements<cafraft::pb::PutRequest>())
    w = s.call<cafraft::pb::WriteResponse>(req.get_as<cafraft::pb::PutRequest>(0), reached);
  else
    w = s.call<cafraft::pb::WriteResponse>(req.get_as<cafraft::pb::DeleteRequest>(0), reached);
  if (!w)
    return fail(w.error(), reached);
  if (json_out)
    print_json(write_json(*w));
  else
    std::printf("OK (index %llu, term %llu)\n", static_cast<unsigned long long>(w->index()),
                static_cast<unsigned long long>(w->term()));
  return exit_ok;
}

std::string role_of(const cafraft::pb::NodeStatus& st) {
  for (auto& m : st.members())
    if (m.id() == st.id() && m.learner() && st.role() == "follower")
      return "learner";
  return st.role();
}

int do_member_list(session& s, bool json_out) {
  // The configuration as the leader has it (any node's view when no leader is known).
  std::optional<cafraft::pb::NodeStatus> view;
  for (auto& e : s.opts().endpoints) {
    auto st = s.ask<cafraft::pb::NodeStatus>(e, cafraft::status_atom::value, 2000ms);
    if (!st)
      continue;
    view = *st;
    if (!st->leader_address().empty() && st->leader_id() != st->id()) {
      auto lst =
          s.ask<cafraft::pb::NodeStatus>(st->leader_address(), cafraft::status_atom::value, 2000ms);
      if (lst)
        view = *lst;
    }
    break;
  }
  if (!view) {
    std::fprintf(stderr, "cafraftctl: no endpoint reachable\n");
    return exit_unreachable;
  }
  bool healthy = true;
  uint64_t leader_commit = view->role() == "leader" ? view->commit_index() : 0;
  std::vector<std::vector<std::string>> rows{
      {"ID", "ADDRESS", "ROLE", "VOTER", "TERM", "COMMIT", "APPLIED", "LAG", "ERROR"}};
  json arr = json::array();
  for (auto& m : view->members()) {
    auto st = s.ask<cafraft::pb::NodeStatus>(m.address(), cafraft::status_atom::value, 2000ms);
    json j{{"id", m.id()}, {"address", m.address()}, {"voter", !m.learner()}};
    if (!st) {
      healthy = false;
      auto why = cafraft::render(st.error());
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
    }
    arr.push_back(j);
  }
  if (json_out)
    print_json(json{{"members", arr}});
  else
    print_table(rows);
  return healthy ? exit_ok : exit_failed;
}

int do_status(session& s, bool json_out) {
  std::vector<std::vector<std::string>> rows{
      {"ENDPOINT", "ID", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "LAST", "ERROR"}};
  json arr = json::array();
  size_t reached = 0;
  for (auto& e : s.opts().endpoints) {
    auto st = s.ask<cafraft::pb::NodeStatus>(e, cafraft::status_atom::value, 2000ms);
    if (!st) {
      auto why = cafraft::render(st.error());
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
  if (json_out)
    print_json(json{{"endpoints", arr}});
  else
    print_table(rows);
  if (reached == 0)
    return exit_unreachable;
  return reached == s.opts().endpoints.size() ? exit_ok : exit_failed;
}

json members_json(const cafraft::pb::MembershipResponse& r) {
  json arr = json::array();
  for (auto& m : r.members())
    arr.push_back(json{{"id", m.id()}, {"address", m.address()}, {"voter", !m.learner()}});
  return json{{"config_index", str(r.config_index())}, {"members", arr}};
}

void print_members(const cafraft::pb::MembershipResponse& r, bool json_out) {
  if (json_out) {
    print_json(members_json(r));
    return;
  }
  std::printf("OK: configuration at index %llu:\n",
              static_cast<unsigned long long>(r.config_index()));
  for (auto& m : r.members())
    std::printf("  %s %s %s\n", m.id().c_str(), m.address().c_str(),
                m.learner() ? "learner" : "voter");
}

} // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN); // OpenSSL writes with a plain write()
  options o;
  std::string endpoints;
  CLI::App app{"cafraftctl: the command-line client of a cafraft cluster", "cafraftctl"};
  app.footer("Exit codes: 0 ok, 1 usage, 2 failed or unhealthy (a missing key, a failed compare, "
             "an unreachable member), 3 no endpoint reachable.");
  app.set_version_flag("--version", std::string{"cafraftctl 0.1.0"});
  app.add_option("--endpoints", endpoints, "Nodes to ask: HOST:PORT,...")
      ->envname("CAFRAFT_ENDPOINTS")
      ->required();
  app.add_option("-w,--write-out", o.format, "Output: table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  app.add_option("--timeout-ms", o.timeout_ms, "Give up after this long")->capture_default_str();
  app.add_option("--tls-cert", o.tls_cert, "PEM client certificate")->envname("CAFRAFT_TLS_CERT");
  app.add_option("--tls-key", o.tls_key, "PEM key of --tls-cert")->envname("CAFRAFT_TLS_KEY");
  app.add_option("--tls-ca", o.tls_ca, "PEM CA of the cluster")->envname("CAFRAFT_TLS_CA");
  app.require_subcommand(1);
  std::string key, value, expected, id, address;
  bool absent = false;
  auto* put = app.add_subcommand("put", "Write KEY=VALUE (returns once committed and applied)");
  put->add_option("KEY", key)->required();
  put->add_option("VALUE", value)->required();
  auto* get = app.add_subcommand("get", "Print the value of KEY (linearizable)");
  get->add_option("KEY", key)->required();
  auto* del = app.add_subcommand("del", "Delete KEY");
  del->add_option("KEY", key)->required();
  auto* cas = app.add_subcommand("cas", "Set KEY to NEW if it is EXPECTED now (exit 2 if not)");
  cas->add_option("KEY", key)->required();
  cas->add_option("EXPECTED", expected)->required();
  cas->add_option("NEW", value)->required();
  cas->add_flag("--absent", absent, "Expect KEY not to exist (EXPECTED is ignored)");
  auto* member = app.add_subcommand("member", "Cluster membership");
  member->require_subcommand(1);
  auto* mlist = member->add_subcommand("list", "One row per member, unreachable ones included");
  auto* madd = member->add_subcommand("add", "Add a member (it then starts with --join)");
  madd->add_option("ID", id)->required();
  madd->add_option("ADDRESS", address, "HOST:PORT")->required();
  auto* mremove = member->add_subcommand("remove", "Remove a member (the leader too)");
  mremove->add_option("ID", id)->required();
  auto* leader = app.add_subcommand("leader", "Print the leader's id and address");
  auto* transfer = leader->add_subcommand("transfer", "Hand the leadership to ID (or the best)");
  transfer->add_option("ID", id);
  auto* status = app.add_subcommand("status", "One row per endpoint");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0)
      return app.exit(e);
    std::fprintf(stderr, "cafraftctl: %s (see --help)\n", e.what());
    return exit_usage;
  }
  if (auto why = cafraft::parse_endpoints(endpoints, o.endpoints); !why.empty()) {
    std::fprintf(stderr, "cafraftctl: --endpoints %s\n", why.c_str());
    return exit_usage;
  }
  if (o.endpoints.empty()) {
    std::fprintf(stderr, "cafraftctl: --endpoints is empty\n");
    return exit_usage;
  }
  bool any_tls = !o.tls_cert.empty() || !o.tls_key.empty() || !o.tls_ca.empty();
  if (any_tls && (o.tls_cert.empty() || o.tls_key.empty() || o.tls_ca.empty())) {
    std::fprintf(stderr, "cafraftctl: TLS needs all of --tls-cert, --tls-key and --tls-ca\n");
    return exit_usage;
  }
  if (any_tls)
    if (auto why = cafraft::check_tls_files(o.tls_cert, o.tls_key, o.tls_ca); !why.empty()) {
      std::fprintf(stderr, "cafraftctl: %s\n", why.c_str());
      return exit_usage;
    }
  if (o.timeout_ms <= 0) {
    std::fprintf(stderr, "cafraftctl: --timeout-ms must be positive\n");
    return exit_usage;
  }
  if (madd->parsed()) {
    std::string h;
    uint16_t p = 0;
    if (!cafraft::split_address(address, h, p)) {
      std::fprintf(stderr, "cafraftctl: ADDRESS must be HOST:PORT, not '%s'\n", address.c_str());
      return exit_usage;
    }
  }
  bool json_out = o.format == "json";
  session s{o};
  bool reached = false;
  namespace pb = cafraft::pb;
  if (put->parsed()) {
    pb::PutRequest req;
    req.set_key(key);
    req.set_value(value);
    return do_write(s, caf::make_message(req), json_out);
  }
  if (del->parsed()) {
    pb::DeleteRequest req;
    req.set_key(key);
    return do_write(s, caf::make_message(req), json_out);
  }
  if (get->parsed()) {
    pb::GetRequest req;
    req.set_key(key);
    auto r = s.call<pb::GetResponse>(req, reached);
    if (!r)
      return fail(r.error(), reached);
    if (json_out)
      print_json(json{{"key", key},
                      {"found", r->found()},
                      {"value", r->value()},
                      {"applied_index", str(r->applied_index())}});
    if (!r->found()) {
      std::fprintf(stderr, "key not found\n");
      return exit_failed;
    }
    if (!json_out)
      std::printf("%s\n", r->value().c_str());
    return exit_ok;
  }
  if (cas->parsed()) {
    pb::CasRequest req;
    req.set_key(key);
    req.set_expected(expected);
    req.set_value(value);
    req.set_expect_absent(absent);
    auto w = s.call<pb::WriteResponse>(req, reached);
    if (!w)
      return fail(w.error(), reached);
    pb::KvResult res;
    res.ParseFromString(w->result());
    if (json_out) {
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
    if (!json_out)
      std::printf("OK (index %llu, term %llu)\n", static_cast<unsigned long long>(w->index()),
                  static_cast<unsigned long long>(w->term()));
    return exit_ok;
  }
  if (mlist->parsed())
    return do_member_list(s, json_out);
  if (madd->parsed() || mremove->parsed()) {
    caf::expected<pb::MembershipResponse> r{caf::error{}};
    if (madd->parsed()) {
      pb::JoinRequest req; // incarnation 0: the node claims the member when it joins
      req.set_id(id);
      req.set_address(address);
      r = s.change(caf::make_message(req), reached);
    } else {
      pb::LeaveRequest req;
      req.set_id(id);
      r = s.change(caf::make_message(req), reached);
    }
    if (!r)
      return fail(r.error(), reached);
    print_members(*r, json_out);
    return exit_ok;
  }
  if (transfer->parsed()) {
    pb::TransferLeadershipRequest req;
    req.set_target(id);
    auto r = s.call<pb::LeaderInfo>(req, reached);
    if (!r)
      return fail(r.error(), reached);
    if (json_out)
      print_json(json{{"id", r->id()}, {"address", r->address()}, {"term", str(r->term())}});
    else
      std::printf("leadership handed to %s at %s (term %llu)\n", r->id().c_str(),
                  r->address().c_str(), static_cast<unsigned long long>(r->term()));
    return exit_ok;
  }
  if (leader->parsed()) {
    auto r = s.call<pb::LeaderInfo>(cafraft::leader_atom::value, reached);
    if (!r)
      return fail(r.error(), reached);
    if (json_out)
      print_json(json{{"id", r->id()}, {"address", r->address()}, {"term", str(r->term())}});
    else
      std::printf("%s %s (term %llu)\n", r->id().c_str(), r->address().c_str(),
                  static_cast<unsigned long long>(r->term()));
    return exit_ok;
  }
  if (status->parsed())
    return do_status(s, json_out);
  return exit_usage;
}
