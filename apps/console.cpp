// cafraft-console: watch the live actors of a running cluster (docs/inspection.md).
//
//   cafraft-console --endpoints HOST:PORT[,...]                 interactive (libedit)
//   cafraft-console --endpoints HOST:PORT[,...] -c "CMD; CMD"   one-shot
//
// Exit codes as cafraftctl: 0 ok, 1 usage, 2 failed or unhealthy (an unreachable node), 3 no
// endpoint reachable.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <CLI/CLI.hpp>
#include <caf/all.hpp>
#include <editline/readline.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include "apps/commands.hpp"
#include "apps/console_parse.hpp"
#include "apps/version.hpp"

using namespace std::chrono_literals;
using json = nlohmann::ordered_json;
namespace pb = cafraft::pb;

namespace {

namespace cli = cafraft::cli;
using cli::exit_failed;
using cli::exit_ok;
using cli::exit_unreachable;
using cli::exit_usage;

struct command_info {
  std::string name;  // the command word
  std::string usage; // its arguments
  size_t min_args, max_args;
  std::string help;
};

const std::vector<command_info>& commands() {
  static const std::vector<command_info> all{
      {"members", "", 0, 0, "the cluster: one row per member with role, term, indexes and lag"},
      {"actors", "[NODE]", 0, 1,
       "the actor tree of one node, or of every member (NODE n1/g17: the replica of group 17 "
       "on n1)"},
      {"inspect", "ACTOR", 1, 1,
       "one actor's whole state (ACTOR as actors names it: n1/leader, n1/g17/leader)"},
      {"groups", "", 0, 0,
       "the Raft groups of the processes: leader, term, members, applied index per group"},
      {"top", "[mailbox|rate]", 0, 1,
       "the actors of every member ranked by mailbox size (default) or message rate; "
       "interactive: refreshes every 2 s until a key is pressed"},
      {"watch", "[SECONDS]", 0, 1,
       "leadership and membership events of every member as they happen, for SECONDS "
       "(one-shot default 10; interactive: until a key is pressed)"},
      {"log", "NODE [N]", 1, 2, "the last N (default 20) log lines of a node"},
      {"put", "KEY VALUE", 2, 2, "write KEY=VALUE (returns once committed and applied)"},
      {"get", "KEY", 1, 1, "the value of KEY (linearizable)"},
      {"del", "KEY", 1, 1, "delete KEY"},
      {"cas", "KEY EXPECTED NEW | --absent KEY NEW", 3, 3,
       "set KEY to NEW if it is EXPECTED now (or does not exist, with --absent)"},
      {"member", "list | add ID HOST:PORT | remove ID", 1, 3,
       "membership: list, add a member (it then starts with --join), remove one"},
      {"leader", "[transfer [ID]]", 0, 2,
       "the leader's id and address; transfer hands the leadership to ID (or the best voter)"},
      {"status", "", 0, 0, "one row per endpoint"},
      {"help", "[COMMAND]", 0, 1, "every command, or one"},
      {"quit", "", 0, 0, "leave (interactive)"},
  };
  return all;
}

const command_info* find_command(const std::string& name) {
  for (auto& c : commands())
    if (c.name == name)
      return &c;
  return nullptr;
}

// The terminal in character mode while a refreshing command runs, so that one key stops it.
class key_wait {
public:
  key_wait() : tty_(isatty(STDIN_FILENO) == 1) {
    if (tty_ && tcgetattr(STDIN_FILENO, &saved_) == 0) {
      auto raw = saved_;
      raw.c_lflag &= static_cast<tcflag_t>(~(ICANON | ECHO));
      raw.c_cc[VMIN] = 1;
      raw.c_cc[VTIME] = 0;
      tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    }
  }
  ~key_wait() {
    if (tty_)
      tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  key_wait(const key_wait&) = delete;
  key_wait& operator=(const key_wait&) = delete;

  /// Waits up to `timeout` for a key (or the end of input); true if one came, and eats it.
  bool pressed(std::chrono::milliseconds timeout) {
    pollfd p{STDIN_FILENO, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) <= 0)
      return false;
    char c;
    return read(STDIN_FILENO, &c, 1) >= 0;
  }

private:
  bool tty_;
  termios saved_{};
};

// "write_us_le_250" before "write_us_le_1000": runs of digits compare as numbers.
struct natural_less {
  bool operator()(const std::string& a, const std::string& b) const {
    size_t i = 0, j = 0;
    while (i < a.size() && j < b.size()) {
      if (std::isdigit(static_cast<unsigned char>(a[i])) &&
          std::isdigit(static_cast<unsigned char>(b[j]))) {
        size_t ei = i, ej = j;
        while (ei < a.size() && std::isdigit(static_cast<unsigned char>(a[ei])))
          ++ei;
        while (ej < b.size() && std::isdigit(static_cast<unsigned char>(b[ej])))
          ++ej;
        if (ei - i != ej - j)
          return ei - i < ej - j; // no leading zeros in field names: longer is larger
        if (auto c = a.compare(i, ei - i, b, j, ej - j); c != 0)
          return c < 0;
        i = ei;
        j = ej;
        continue;
      }
      if (a[i] != b[j])
        return a[i] < b[j];
      ++i;
      ++j;
    }
    return a.size() - i < b.size() - j;
  }
};

std::string rate(double r) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), r < 10 && r > 0 ? "%.1f" : "%.0f", r);
  return buf;
}

class console {
public:
  console(const cli::session_options& o, bool interactive)
      : s_(o), client_(s_.client()), interactive_(interactive) {}

  /// Runs one command; returns its exit code.
  int run(const std::vector<std::string>& cmd) {
    auto& name = cmd[0];
    auto* info = find_command(name);
    if (!info) {
      std::fprintf(stderr, "unknown command '%s' (try help)\n", name.c_str());
      return exit_usage;
    }
    auto args = std::vector<std::string>(cmd.begin() + 1, cmd.end());
    if (args.size() < info->min_args || args.size() > info->max_args)
      return usage(*info);
    if (name == "help")
      return help(args.empty() ? std::string{} : args[0]);
    if (name == "members")
      return cli::member_list(s_);
    if (name == "actors")
      return actors(args.empty() ? std::string{} : args[0]);
    if (name == "inspect")
      return inspect(args[0]);
    if (name == "groups")
      return cli::group_list(s_);
    if (name == "top") {
      bool by_rate = !args.empty() && args[0] == "rate";
      if (!args.empty() && !by_rate && args[0] != "mailbox")
        return usage(*info);
      return top(by_rate);
    }
    if (name == "log") {
      auto n = args.size() > 1 ? number(args[1]) : 20;
      return n > 0 ? log(args[0], static_cast<size_t>(n)) : usage(*info);
    }
    if (name == "watch") {
      auto seconds = !args.empty() ? number(args[0]) : interactive_ ? 0 : 10;
      return seconds >= 0 && (seconds > 0 || args.empty()) ? watch(seconds) : usage(*info);
    }
    if (name == "put")
      return cli::put(s_, args[0], args[1]);
    if (name == "get")
      return cli::get(s_, args[0]);
    if (name == "del")
      return cli::del(s_, args[0]);
    if (name == "cas")
      return args[0] == "--absent" ? cli::cas(s_, args[1], "", args[2], true)
                                   : cli::cas(s_, args[0], args[1], args[2], false);
    if (name == "member") {
      if (args[0] == "list" && args.size() == 1)
        return cli::member_list(s_);
      if (args[0] == "add" && args.size() == 3)
        return cli::member_add(s_, args[1], args[2]);
      if (args[0] == "remove" && args.size() == 2)
        return cli::member_remove(s_, args[1]);
      return usage(*info);
    }
    if (name == "leader") {
      if (args.empty())
        return cli::leader(s_);
      if (args[0] == "transfer")
        return cli::leader_transfer(s_, args.size() > 1 ? args[1] : std::string{});
      return usage(*info);
    }
    if (name == "status")
      return cli::status(s_);
    return exit_ok; // quit: the caller leaves
  }

private:
  static int usage(const command_info& c) {
    std::fprintf(stderr, "usage: %s%s%s\n", c.name.c_str(), c.usage.empty() ? "" : " ",
                 c.usage.c_str());
    return exit_usage;
  }

  // A positive number, 0 for none, -1 for something else.
  static long number(const std::string& s) {
    if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos)
      return -1;
    return std::stol(s);
  }

  int help(const std::string& one) {
    for (auto& c : commands())
      if (one.empty() || c.name == one) {
        auto head = c.name + (c.usage.empty() ? "" : " " + c.usage);
        std::printf("  %-40s %s\n", head.c_str(), c.help.c_str());
      }
    if (!one.empty() && !find_command(one)) {
      std::fprintf(stderr, "unknown command '%s'\n", one.c_str());
      return exit_usage;
    }
    return exit_ok;
  }

  // The members to look at: `only` (an id), or all.
  std::vector<pb::Member> targets(const std::string& only, bool& reachable) {
    std::vector<pb::Member> out;
    auto v = s_.view();
    reachable = v.has_value();
    if (v)
      for (auto& m : v->members())
        if (only.empty() || m.id() == only)
          out.push_back(m);
    return out;
  }

  // "n1/g17/leader" names an actor of group 17's replica on n1; "n1/leader" one of the group
  // --group names (0: n1's own; docs/groups.md). Returns the node id and sets `group`.
  std::string split_name(const std::string& name, uint64_t& group) const {
    auto slash = name.find('/');
    auto node = name.substr(0, slash);
    group = s_.opts().group;
    if (slash == std::string::npos)
      return node;
    auto rest = name.substr(slash + 1);
    auto part = rest.substr(0, rest.find('/'));
    if (part.size() >= 2 && part.size() <= 12 && part[0] == 'g' &&
        part.find_first_not_of("0123456789", 1) == std::string::npos)
      group = std::stoull(part.substr(1));
    return node;
  }

  // The client that asks group `group` of the processes.
  cafraft::remote_client& client_for(uint64_t group) {
    if (group == s_.opts().group)
      return client_;
    auto& c = group_clients_[group];
    if (!c) {
      c = std::make_unique<cafraft::remote_client>(
          s_.system(), s_.opts().endpoints,
          cafraft::tls_files{s_.opts().tls_cert, s_.opts().tls_key, s_.opts().tls_ca, {}},
          std::chrono::milliseconds{s_.opts().timeout_ms});
      c->use_group(group);
    }
    return *c;
  }

  int actors(const std::string& name) {
    uint64_t group = 0;
    auto only = split_name(name, group);
    auto& client = client_for(group);
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
          client.ask<pb::ActorDirectory>(m.address(), cafraft::directory_atom::value, 2000ms);
      if (!dir) {
        healthy = false;
        if (s_.json_out())
          out.push_back({{"node", m.id()}, {"error", cafraft::render(dir.error())}});
        else
          std::printf("%s  unreachable: %s\n", m.id().c_str(),
                      cafraft::render(dir.error()).c_str());
        continue;
      }
      if (s_.json_out()) {
        json list = json::array();
        for (auto& a : dir->actors())
          list.push_back({{"name", a.name()}, {"kind", a.kind()}, {"parent", a.parent()}});
        out.push_back({{"node", m.id()}, {"actors", list}});
        continue;
      }
      for (auto& a : dir->actors())
        if (a.parent().empty())
          std::printf("%s (node)\n", a.name().c_str());
      for (auto& a : dir->actors())
        if (!a.parent().empty())
          std::printf("  +-- %-28s %s\n", a.name().c_str(), a.kind().c_str());
    }
    if (s_.json_out())
      cli::print_json(json{{"nodes", out}});
    return healthy ? exit_ok : exit_failed;
  }

  std::string address_of(const std::string& node) {
    bool reachable = false;
    for (auto& m : targets(node, reachable))
      return m.address();
    return {};
  }

  int inspect(const std::string& name) {
    uint64_t group = 0;
    auto node = split_name(name, group);
    auto address = address_of(node);
    if (address.empty()) {
      std::fprintf(stderr, "no member %s\n", node.c_str());
      return exit_failed;
    }
    pb::InspectRequest req;
    req.set_name(name);
    auto i = client_for(group).ask<pb::Inspection>(address, req, 2000ms);
    if (!i) {
      std::fprintf(stderr, "%s: %s\n", name.c_str(), cafraft::render(i.error()).c_str());
      return exit_failed;
    }
    std::map<std::string, std::string, natural_less> fields{i->fields().begin(), i->fields().end()};
    if (s_.json_out()) {
      json j{{"name", i->name()},
             {"kind", i->kind()},
             {"mailbox", std::to_string(i->mailbox())},
             {"handled", std::to_string(i->handled())},
             {"rate_1s", i->rate_1s()},
             {"rate_10s", i->rate_10s()}};
      for (auto& [k, v] : fields)
        j["fields"][k] = v;
      cli::print_json(j);
      return exit_ok;
    }
    std::printf("%s (%s)  mailbox %llu  handled %llu  msg/s %s (1 s) %s (10 s)\n",
                i->name().c_str(), i->kind().c_str(), static_cast<unsigned long long>(i->mailbox()),
                static_cast<unsigned long long>(i->handled()), rate(i->rate_1s()).c_str(),
                rate(i->rate_10s()).c_str());
    for (auto& [k, v] : fields)
      std::printf("  %-28s %s\n", k.c_str(), v.c_str());
    return exit_ok;
  }

  // One snapshot of every actor of every member, ranked; false if a member was unreachable.
  bool top_snapshot(bool by_rate, std::vector<pb::Inspection>& all,
                    std::vector<std::string>& unreachable) {
    bool reachable = false;
    auto ms = targets({}, reachable);
    if (!reachable)
      return false;
    for (auto& m : ms) {
      auto dir =
          client_.ask<pb::ActorDirectory>(m.address(), cafraft::directory_atom::value, 2000ms);
      if (!dir) {
        unreachable.push_back(m.id());
        continue;
      }
      for (auto& a : dir->actors()) {
        pb::InspectRequest req;
        req.set_name(a.name());
        if (auto i = client_.ask<pb::Inspection>(m.address(), req, 2000ms))
          all.push_back(*i);
      }
    }
    auto key = [by_rate](const pb::Inspection& i) {
      return by_rate ? std::make_tuple(i.rate_1s(), static_cast<double>(i.mailbox()))
                     : std::make_tuple(static_cast<double>(i.mailbox()), i.rate_1s());
    };
    std::stable_sort(all.begin(), all.end(), [&](const pb::Inspection& a, const pb::Inspection& b) {
      return key(a) > key(b);
    });
    return true;
  }

  void print_top(const std::vector<pb::Inspection>& all,
                 const std::vector<std::string>& unreachable) {
    if (s_.json_out()) {
      json arr = json::array();
      for (auto& i : all)
        arr.push_back({{"name", i.name()},
                       {"kind", i.kind()},
                       {"mailbox", std::to_string(i.mailbox())},
                       {"handled", std::to_string(i.handled())},
                       {"rate_1s", i.rate_1s()},
                       {"rate_10s", i.rate_10s()}});
      cli::print_json(json{{"actors", arr}, {"unreachable", unreachable}});
      return;
    }
    std::vector<std::vector<std::string>> rows{
        {"ACTOR", "KIND", "MAILBOX", "HANDLED", "MSG/S 1s", "MSG/S 10s"}};
    for (auto& i : all)
      rows.push_back({i.name(), i.kind(), std::to_string(i.mailbox()), std::to_string(i.handled()),
                      rate(i.rate_1s()), rate(i.rate_10s())});
    cli::print_table(rows);
    for (auto& id : unreachable)
      std::printf("%s unreachable\n", id.c_str());
  }

  int top(bool by_rate) {
    if (!interactive_) {
      std::vector<pb::Inspection> all;
      std::vector<std::string> unreachable;
      if (!top_snapshot(by_rate, all, unreachable)) {
        std::fprintf(stderr, "no endpoint reachable\n");
        return exit_unreachable;
      }
      print_top(all, unreachable);
      return unreachable.empty() ? exit_ok : exit_failed;
    }
    key_wait keys;
    for (;;) {
      std::vector<pb::Inspection> all;
      std::vector<std::string> unreachable;
      bool reachable = top_snapshot(by_rate, all, unreachable);
      std::printf("\x1b[H\x1b[2J"); // home, clear the screen
      auto now = std::time(nullptr);
      std::printf("cafraft top, by %s, %s", by_rate ? "message rate" : "mailbox size",
                  std::ctime(&now));
      if (reachable)
        print_top(all, unreachable);
      else
        std::printf("no endpoint reachable\n");
      std::printf("(press any key to stop)\n");
      std::fflush(stdout);
      if (keys.pressed(2000ms))
        return exit_ok;
    }
  }

  // Subscribes to every member's leadership and membership events (docs/membership.md) and
  // prints them as they come, for `seconds` (0: until a key is pressed).
  int watch(long seconds) {
    bool reachable = false;
    auto ms = targets({}, reachable);
    if (!reachable) {
      std::fprintf(stderr, "no endpoint reachable\n");
      return exit_unreachable;
    }
    bool json_out = s_.json_out();
    auto printer = s_.system().spawn([json_out](caf::event_based_actor*) -> caf::behavior {
      return {[json_out](const pb::LeadershipEvent& ev) {
        std::printf("%s\n", describe(ev, json_out).c_str());
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
      caf::anon_send(d, cafraft::subscribe_atom::value, printer, true);
    }
    std::fflush(stdout);
    if (seconds > 0 && !interactive_) {
      std::this_thread::sleep_for(std::chrono::seconds{seconds});
    } else {
      key_wait keys;
      auto until = std::chrono::steady_clock::now() + std::chrono::seconds{seconds};
      while (!keys.pressed(200ms))
        if (seconds > 0 && std::chrono::steady_clock::now() >= until)
          break;
    }
    caf::anon_send_exit(printer, caf::exit_reason::user_shutdown);
    return healthy ? exit_ok : exit_failed;
  }

  static std::string describe(const pb::LeadershipEvent& ev, bool json_out) {
    auto t = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
    std::string what;
    std::string members;
    for (auto& m : ev.members())
      members += (members.empty() ? "" : ", ") + m.id() + (m.learner() ? " (learner)" : "");
    switch (ev.kind()) {
    case pb::LeadershipEvent::BECAME_LEADER:
      what = "became leader";
      break;
    case pb::LeadershipEvent::LOST_LEADERSHIP:
      what = "lost leadership";
      break;
    case pb::LeadershipEvent::MEMBERSHIP_CHANGED:
      what = "configuration at index " + std::to_string(ev.config_index()) + ": " + members;
      break;
    case pb::LeadershipEvent::LEADER_INVALID:
      what = "leader " + ev.leader_id() + " is not valid: asked it to step down";
      break;
    default:
      what = "follows " + (ev.leader_id().empty() ? std::string{"nobody"} : ev.leader_id());
    }
    if (json_out) {
      json j{{"time_ms", std::to_string(t)},
             {"node", ev.node_id()},
             {"term", std::to_string(ev.term())},
             {"event", what},
             {"dropped_before", std::to_string(ev.dropped())}};
      return j.dump(-1, ' ', false, json::error_handler_t::replace);
    }
    // Local time of day with milliseconds.
    auto secs = static_cast<std::time_t>(t / 1000);
    std::tm tm{};
    localtime_r(&secs, &tm);
    char hms[16];
    std::strftime(hms, sizeof(hms), "%H:%M:%S", &tm);
    char stamp[32];
    std::snprintf(stamp, sizeof(stamp), "%s.%03lld", hms, static_cast<long long>(t % 1000));
    return std::string{stamp} + " " + ev.node_id() + " term " + std::to_string(ev.term()) + ": " +
           what + (ev.dropped() > 0 ? " (events were dropped)" : "");
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
    if (s_.json_out()) {
      cli::print_json(
          json{{"node", node},
               {"lines", std::vector<std::string>(lines->lines().begin(), lines->lines().end())}});
      return exit_ok;
    }
    for (auto& l : lines->lines())
      std::printf("%s\n", l.c_str());
    return exit_ok;
  }

  cli::session s_;
  cafraft::remote_client& client_;
  std::map<uint64_t, std::unique_ptr<cafraft::remote_client>> group_clients_;
  bool interactive_;
};

// Tab completion of command names (libedit's readline interface).
char* complete_command(const char* text, int state) {
  static size_t next;
  if (state == 0)
    next = 0;
  while (next < commands().size()) {
    auto& word = commands()[next++].name;
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
  cli::session_options o;
  o.program = "cafraft-console";
  std::string endpoints, script;
  CLI::App app{"cafraft-console: the live actors of a cafraft cluster", "cafraft-console"};
  std::string names;
  for (auto& c : commands())
    names += (names.empty() ? "" : ", ") + c.name;
  app.footer("Commands (help COMMAND tells more): " + names +
             ". Exit codes: 0 ok, 1 usage, 2 failed or unhealthy, 3 no endpoint reachable.");
  app.set_version_flag("--version", std::string{"cafraft-console "} + CAFRAFT_VERSION);
  app.add_option("--endpoints", endpoints, "Nodes to ask: HOST:PORT,...")
      ->envname("CAFRAFT_ENDPOINTS")
      ->required();
  app.add_option("-c", script, "Run these commands (separated by ';') and exit");
  app.add_option("-w,--write-out", o.format, "Output: table or json")
      ->check(CLI::IsMember({"table", "json"}));
  app.add_option("--timeout-ms", o.timeout_ms, "Give up on a write or read after this long")
      ->capture_default_str();
  app.add_option("--tls-cert", o.tls_cert, "PEM client certificate")->envname("CAFRAFT_TLS_CERT");
  app.add_option("--tls-key", o.tls_key, "PEM key of --tls-cert")->envname("CAFRAFT_TLS_KEY");
  app.add_option("--tls-ca", o.tls_ca, "PEM CA of the cluster")->envname("CAFRAFT_TLS_CA");
  app.add_option("--group", o.group,
                 "The Raft group the commands are for, in processes that host many "
                 "(cafraft-node --groups; 0: each process's own)")
      ->capture_default_str()
      ->envname("CAFRAFT_GROUP");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0)
      return app.exit(e);
    std::fprintf(stderr, "cafraft-console: %s (see --help)\n", e.what());
    return exit_usage;
  }
  if (auto why = cli::check(o, endpoints); !why.empty()) {
    std::fprintf(stderr, "cafraft-console: %s\n", why.c_str());
    return exit_usage;
  }
  bool one_shot = !script.empty();
  console con{o, !one_shot};
  if (one_shot) {
    auto p = cafraft::console::parse(script);
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
