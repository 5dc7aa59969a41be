// cafraft-console: watch the live actors of a running cluster (docs/inspection.md).
//
//   cafraft-console --endpoints HOST:PORT[,...]                 interactive (libedit)
//   cafraft-console --endpoints HOST:PORT[,...] -c "CMD; CMD"   one-shot
//
// Exit codes as cafraftctl: 0 ok, 1 usage, 2 failed or unhealthy (an unreachable node), 3 no
// endpoint reachable.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>
#include <editline/readline.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/remote_client.hpp"
#include "apps/console_parse.hpp"
#include "apps/network.hpp"
#include "messages/api.hpp"
#include "messages/register.hpp"
#include "runtime/logging.hpp"

using namespace std::chrono_literals;
using json = nlohmann::ordered_json;
namespace pb = cafraft::pb;

namespace {

constexpr int exit_ok = 0, exit_usage = 1, exit_failed = 2, exit_unreachable = 3;

struct options {
  std::vector<std::string> endpoints;
  std::string commands;
  std::string format = "table";
  std::string tls_cert, tls_key, tls_ca;
};

const std::vector<std::pair<std::string, std::string>> command_help{
    {"members", "the cluster: one row per member with role, term, indexes and lag"},
    {"actors [NODE]", "the actor tree of one node, or of every member"},
    {"inspect ACTOR", "one actor's whole state (ACTOR as actors names it, e.g. n1/leader)"},
    {"top", "the actors of every member, ranked by mailbox size, then messages handled"},
    {"watch [SECONDS]", "leadership events of every member as they happen (default 10 s)"},
    {"log NODE [N]", "the last N (default 20) log lines of a node"},
    {"status", "one row per endpoint"},
    {"leader", "the leader's id and address"},
    {"help", "this list"},
    {"quit", "leave (interactive)"},
};

class console {
public:
  explicit console(const options& o)
      : opts_(o), cfg_(o.tls_cert, o.tls_key, o.tls_ca), sys_(cfg_),
        client_(sys_, o.endpoints, !o.tls_cert.empty()) {
    cafraft::get_logger("cafraft-client")->set_level(spdlog::level::off);
  }

  /// Runs one command; returns its exit code.
  int run(const std::vector<std::string>& cmd) {
    auto& name = cmd[0];
    if (name == "help")
      return help();
    if (name == "members")
      return members();
    if (name == "actors")
      return actors(cmd.size() > 1 ? cmd[1] : std::string{});
    if (name == "inspect") {
      if (cmd.size() != 2) {
        std::fprintf(stderr, "usage: inspect ACTOR\n");
        return exit_usage;
      }
      return inspect(cmd[1]);
    }
    if (name == "top")
      return top();
    if (name == "log") {
      size_t n = 20;
      try {
        if (cmd.size() > 2)
          n = static_cast<size_t>(std::stoul(cmd[2]));
      } catch (const std::exception&) {
        n = 0;
      }
      if (cmd.size() < 2 || n == 0) {
        std::fprintf(stderr, "usage: log NODE [N]\n");
        return exit_usage;
      }
      return log(cmd[1], n);
    }
    if (name == "watch") {
      int seconds = 10;
      try {
        if (cmd.size() > 1)
          seconds = std::stoi(cmd[1]);
      } catch (const std::exception&) {
        seconds = -1;
      }
      if (seconds <= 0) {
        std::fprintf(stderr, "usage: watch [SECONDS]\n");
        return exit_usage;
      }
      return watch(seconds);
    }
    if (name == "status")
      return status();
    if (name == "leader")
      return leader();
    std::fprintf(stderr, "unknown command '%s' (try help)\n", name.c_str());
    return exit_usage;
  }

private:
  bool json_out() const { return opts_.format == "json"; }

  // The configuration as the leader has it (any node's view when no leader is known).
  std::optional<pb::NodeStatus> view() {
    for (auto& e : opts_.endpoints) {
      auto st = client_.ask<pb::NodeStatus>(e, cafraft::status_atom::value, 2000ms);
      if (!st)
        continue;
      if (!st->leader_address().empty() && st->leader_id() != st->id())
        if (auto l = client_.ask<pb::NodeStatus>(st->leader_address(), cafraft::status_atom::value,
                                                 2000ms))
          return *l;
      return *st;
    }
    return std::nullopt;
  }

  int help() {
    for (auto& [c, h] : command_help)
      std::printf("  %-15s %s\n", c.c_str(), h.c_str());
    return exit_ok;
  }

  int members() {
    auto v = view();
    if (!v) {
      std::fprintf(stderr, "no endpoint reachable\n");
      return exit_unreachable;
    }
    bool healthy = true;
    json arr = json::array();
    std::printf("%-6s %-22s %-12s %-8s %-6s %-8s %-8s\n", "ID", "ADDRESS", "ROLE", "VOTER", "TERM",
                "COMMIT", "APPLIED");
    for (auto& m : v->members()) {
      auto st = client_.ask<pb::NodeStatus>(m.address(), cafraft::status_atom::value, 2000ms);
      auto voter = m.learner() ? "learner" : "voter";
      if (!st) {
        healthy = false;
        if (json_out())
          arr.push_back({{"id", m.id()}, {"role", "unreachable"}});
        else
          std::printf("%-6s %-22s %-12s %-8s %s\n", m.id().c_str(), m.address().c_str(),
                      "unreachable", voter, cafraft::render(st.error()).c_str());
        continue;
      }
      if (json_out())
        arr.push_back({{"id", m.id()},
                       {"role", st->role()},
                       {"term", std::to_string(st->term())},
                       {"commit_index", std::to_string(st->commit_index())}});
      else
        std::printf("%-6s %-22s %-12s %-8s %-6llu %-8llu %-8llu\n", m.id().c_str(),
                    m.address().c_str(), st->role().c_str(), voter,
                    static_cast<unsigned long long>(st->term()),
                    static_cast<unsigned long long>(st->commit_index()),
                    static_cast<unsigned long long>(st->applied_index()));
    }
    if (json_out())
      std::printf("%s\n", json{{"members", arr}}.dump(2).c_str());
    return healthy ? exit_ok : exit_failed;
  }

  // The members to look at: `only` (an id), or all.
  std::vector<pb::Member> targets(const std::string& only, bool& reachable) {
    std::vector<pb::Member> out;
    auto v = view();
    reachable = v.has_value();
    if (v)
      for (auto& m : v->members())
        if (only.empty() || m.id() == only)
          out.push_back(m);
    return out;
  }

  int actors(const std::string& only) {
    bool reachable = false;
    auto ms = targets(only, reachable);
    if (!reachable) {
      std::fprintf(stderr, "no endpoint reachable\n");
      return exit_unreachable;
    }
    if (ms.empty()) {
      std::fprintf(stderr, "no member %s\n", only.c_str());
      return exit_failed;
    }
    bool healthy = true;
    json out = json::array();
    for (auto& m : ms) {
      auto dir =
          client_.ask<pb::ActorDirectory>(m.address(), cafraft::directory_atom::value, 2000ms);
      if (!dir) {
        healthy = false;
        if (json_out())
          out.push_back({{"node", m.id()}, {"error", cafraft::render(dir.error())}});
        else
          std::printf("%s  unreachable: %s\n", m.id().c_str(),
                      cafraft::render(dir.error()).c_str());
        continue;
      }
      if (json_out()) {
        json list = json::array();
        for (auto& a : dir->actors())
          list.push_back({{"name", a.name()}, {"kind", a.kind()}, {"parent", a.parent()}});
        out.push_back({{"node", m.id()}, {"actors", list}});
        continue;
      }
      std::printf("%s (node)\n", m.id().c_str());
      for (auto& a : dir->actors())
        if (!a.parent().empty())
          std::printf("  +-- %-28s %s\n", a.name().c_str(), a.kind().c_str());
    }
    if (json_out())
      std::printf("%s\n", json{{"nodes", out}}.dump(2).c_str());
    return healthy ? exit_ok : exit_failed;
  }

  std::string address_of(const std::string& node) {
    bool reachable = false;
    for (auto& m : targets(node, reachable))
      return m.address();
    return {};
  }

  int inspect(const std::string& name) {
    auto node = name.substr(0, name.find('/'));
    auto address = address_of(node);
    if (address.empty()) {
      std::fprintf(stderr, "no member %s\n", node.c_str());
      return exit_failed;
    }
    pb::InspectRequest req;
    req.set_name(name);
    auto i = client_.ask<pb::Inspection>(address, req, 2000ms);
    if (!i) {
      std::fprintf(stderr, "%s: %s\n", name.c_str(), cafraft::render(i.error()).c_str());
      return exit_failed;
    }
    std::map<std::string, std::string> fields{i->fields().begin(), i->fields().end()};
    if (json_out()) {
      json j{{"name", i->name()},
             {"kind", i->kind()},
             {"mailbox", std::to_string(i->mailbox())},
             {"handled", std::to_string(i->handled())}};
      for (auto& [k, v] : fields)
        j["fields"][k] = v;
      std::printf("%s\n", j.dump(2).c_str());
      return exit_ok;
    }
    std::printf("%s (%s)  mailbox %llu  handled %llu\n", i->name().c_str(), i->kind().c_str(),
                static_cast<unsigned long long>(i->mailbox()),
                static_cast<unsigned long long>(i->handled()));
    for (auto& [k, v] : fields)
      std::printf("  %-28s %s\n", k.c_str(), v.c_str());
    return exit_ok;
  }

  int top() {
    bool reachable = false;
    auto ms = targets({}, reachable);
    if (!reachable) {
      std::fprintf(stderr, "no endpoint reachable\n");
      return exit_unreachable;
    }
    std::vector<pb::Inspection> all;
    bool healthy = true;
    for (auto& m : ms) {
      auto dir =
          client_.ask<pb::ActorDirectory>(m.address(), cafraft::directory_atom::value, 2000ms);
      if (!dir) {
        healthy = false;
        continue;
      }
      for (auto& a : dir->actors()) {
        pb::InspectRequest req;
        req.set_name(a.name());
        if (auto i = client_.ask<pb::Inspection>(m.address(), req, 2000ms))
          all.push_back(*i);
      }
    }
    std::sort(all.begin(), all.end(), [](const pb::Inspection& a, const pb::Inspection& b) {
      return a.mailbox() != b.mailbox() ? a.mailbox() > b.mailbox() : a.handled() > b.handled();
    });
    std::printf("%-28s %-16s %8s %10s\n", "ACTOR", "KIND", "MAILBOX", "HANDLED");
    for (auto& i : all)
      std::printf("%-28s %-16s %8llu %10llu\n", i.name().c_str(), i.kind().c_str(),
                  static_cast<unsigned long long>(i.mailbox()),
                  static_cast<unsigned long long>(i.handled()));
    return healthy ? exit_ok : exit_failed;
  }

  // Subscribes to every member's leadership events (docs/membership.md) and prints them as they
  // come, for `seconds`.
  int watch(int seconds) {
    bool reachable = false;
    auto ms = targets({}, reachable);
    if (!reachable) {
      std::fprintf(stderr, "no endpoint reachable\n");
      return exit_unreachable;
    }
    auto printer = sys_.spawn([](caf::event_based_actor*) -> caf::behavior {
      return {[](const pb::LeadershipEvent& ev) {
        auto t = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
        const char* what = ev.kind() == pb::LeadershipEvent::BECAME_LEADER     ? "became leader"
                           : ev.kind() == pb::LeadershipEvent::LOST_LEADERSHIP ? "lost leadership"
                                                                               : "follows";
        std::printf("%lld.%03lld %s term %llu: %s%s%s%s\n", static_cast<long long>(t / 1000),
                    static_cast<long long>(t % 1000), ev.node_id().c_str(),
                    static_cast<unsigned long long>(ev.term()), what,
                    ev.kind() == pb::LeadershipEvent::LEADER_CHANGED ? " " : "",
                    ev.kind() == pb::LeadershipEvent::LEADER_CHANGED ? ev.leader_id().c_str() : "",
                    ev.dropped() > 0 ? " (events were dropped)" : "");
        std::fflush(stdout);
      }};
    });
    bool healthy = true;
    for (auto& m : ms) {
      auto d = client_.connect(m.address());
      if (!d) {
        healthy = false;
        std::printf("%s unreachable\n", m.id().c_str());
        continue;
      }
      caf::anon_send(d, cafraft::subscribe_atom::value, printer);
    }
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::seconds{seconds});
    caf::anon_send_exit(printer, caf::exit_reason::user_shutdown);
    return healthy ? exit_ok : exit_failed;
  }

  int log(const std::string& node, size_t n) {
    auto address = address_of(node);
    if (address.empty()) {
      std::fprintf(stderr, "no member %s\n", node.c_str());
      return exit_failed;
    }
    auto lines = client_.ask<pb::LogLines>(
        address, caf::make_message(cafraft::recent_log_atom::value, static_cast<uint32_t>(n)),
        2000ms);
    if (!lines) {
      std::fprintf(stderr, "%s: %s\n", node.c_str(), cafraft::render(lines.error()).c_str());
      return exit_failed;
    }
    for (auto& l : lines->lines())
      std::printf("%s\n", l.c_str());
    return exit_ok;
  }

  int status() {
    size_t reached = 0;
    for (auto& e : opts_.endpoints) {
      auto st = client_.ask<pb::NodeStatus>(e, cafraft::status_atom::value, 2000ms);
      if (!st) {
        std::printf("%-22s unreachable: %s\n", e.c_str(), cafraft::render(st.error()).c_str());
        continue;
      }
      ++reached;
      std::printf("%-22s %-4s %-10s term %llu leader %s commit %llu\n", e.c_str(), st->id().c_str(),
                  st->role().c_str(), static_cast<unsigned long long>(st->term()),
                  st->leader_id().empty() ? "-" : st->leader_id().c_str(),
                  static_cast<unsigned long long>(st->commit_index()));
    }
    if (reached == 0)
      return exit_unreachable;
    return reached == opts_.endpoints.size() ? exit_ok : exit_failed;
  }

  int leader() {
    bool reached = false;
    auto r = client_.call<pb::LeaderInfo>(cafraft::leader_atom::value, reached);
    if (!r) {
      std::fprintf(stderr, "%s\n", cafraft::render(r.error()).c_str());
      return reached ? exit_failed : exit_unreachable;
    }
    std::printf("%s %s (term %llu)\n", r->id().c_str(), r->address().c_str(),
                static_cast<unsigned long long>(r->term()));
    return exit_ok;
  }

  options opts_;
  cafraft::network_config cfg_;
  caf::actor_system sys_;
  cafraft::remote_client client_;
};

// Tab completion of command names (libedit's readline interface).
char* complete_command(const char* text, int state) {
  static size_t next;
  if (state == 0)
    next = 0;
  while (next < command_help.size()) {
    auto word = command_help[next++].first;
    word = word.substr(0, word.find(' '));
    if (word.rfind(text, 0) == 0)
      return strdup(word.c_str());
  }
  return nullptr;
}

char** completion(const char* text, int start, int) {
  rl_attempted_completion_over = 1;
  return start == 0 ? rl_completion_matches(text, complete_command) : nullptr;
}

} // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  options o;
  std::string endpoints;
  CLI::App app{"cafraft-console: the live actors of a cafraft cluster", "cafraft-console"};
  app.footer("Commands: members, actors [NODE], inspect ACTOR, top, watch [SECONDS], log NODE "
             "[N], status, "
             "leader, help. "
             "Exit codes: 0 ok, 1 usage, 2 failed or unhealthy, 3 no endpoint reachable.");
  app.add_option("--endpoints", endpoints, "Nodes to ask: HOST:PORT,...")
      ->envname("CAFRAFT_ENDPOINTS")
      ->required();
  app.add_option("-c", o.commands, "Run these commands (separated by ';') and exit");
  app.add_option("-w,--write-out", o.format, "Output: table or json")
      ->check(CLI::IsMember({"table", "json"}));
  app.add_option("--tls-cert", o.tls_cert, "PEM client certificate")->envname("CAFRAFT_TLS_CERT");
  app.add_option("--tls-key", o.tls_key, "PEM key of --tls-cert")->envname("CAFRAFT_TLS_KEY");
  app.add_option("--tls-ca", o.tls_ca, "PEM CA of the cluster")->envname("CAFRAFT_TLS_CA");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0)
      return app.exit(e);
    std::fprintf(stderr, "cafraft-console: %s (see --help)\n", e.what());
    return exit_usage;
  }
  if (auto why = cafraft::parse_endpoints(endpoints, o.endpoints); !why.empty()) {
    std::fprintf(stderr, "cafraft-console: --endpoints %s\n", why.c_str());
    return exit_usage;
  }
  if (o.endpoints.empty()) {
    std::fprintf(stderr, "cafraft-console: --endpoints is empty\n");
    return exit_usage;
  }
  bool any_tls = !o.tls_cert.empty() || !o.tls_key.empty() || !o.tls_ca.empty();
  if (any_tls) {
    auto why = o.tls_cert.empty() || o.tls_key.empty() || o.tls_ca.empty()
                   ? std::string{"TLS needs all of --tls-cert, --tls-key and --tls-ca"}
                   : cafraft::check_tls_files(o.tls_cert, o.tls_key, o.tls_ca);
    if (!why.empty()) {
      std::fprintf(stderr, "cafraft-console: %s\n", why.c_str());
      return exit_usage;
    }
  }
  console con{o};
  if (!o.commands.empty()) { // one-shot
    auto p = cafraft::console::parse(o.commands);
    if (!p.error.empty()) {
      std::fprintf(stderr, "cafraft-console: %s\n", p.error.c_str());
      return exit_usage;
    }
    int worst = exit_ok;
    for (auto& cmd : p.commands)
      worst = std::max(worst, con.run(cmd));
    return worst;
  }
  rl_attempted_completion_function = completion;
  while (char* raw = readline("cafraft> ")) {
    std::string line{raw};
    std::free(raw);
    auto p = cafraft::console::parse(line);
    if (!p.error.empty()) {
      std::fprintf(stderr, "%s\n", p.error.c_str());
      continue;
    }
    if (!p.commands.empty())
      add_history(line.c_str());
    for (auto& cmd : p.commands) {
      if (cmd[0] == "quit" || cmd[0] == "exit")
        return exit_ok;
      con.run(cmd);
    }
  }
  return exit_ok;
}
