// cafraftctl: the command-line client of a cafraft cluster (README: "Run a cluster").
//
//   cafraftctl --endpoints HOST:PORT[,HOST:PORT...] [-w table|json] COMMAND
//
// It tries the endpoints in turn and follows not_leader redirects itself. Exit codes: 0 ok,
// 1 usage, 2 failed or unhealthy, 3 no endpoint reachable. The commands are in
// apps/commands.cpp, shared with cafraft-console.
#include <csignal>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "apps/commands.hpp"
#include "apps/version.hpp"

namespace cli = cafraft::cli;

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN); // OpenSSL writes with a plain write()
  cli::session_options o;
  o.program = "cafraftctl";
  std::string endpoints;
  CLI::App app{"cafraftctl: the command-line client of a cafraft cluster", "cafraftctl"};
  app.footer("Exit codes: 0 ok, 1 usage, 2 failed or unhealthy (a missing key, a failed compare, "
             "an unreachable member), 3 no endpoint reachable.");
  app.set_version_flag("--version", std::string{"cafraftctl "} + CAFRAFT_VERSION);
  app.add_option("--endpoints", endpoints,
                 "Nodes to ask: HOST:PORT,... (required but for snapshot status)")
      ->envname("CAFRAFT_ENDPOINTS");
  app.add_option("-w,--write-out", o.format, "Output: table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  app.add_option("--timeout-ms", o.timeout_ms, "Give up after this long")->capture_default_str();
  app.add_option("--tls-cert", o.tls_cert, "PEM client certificate")->envname("CAFRAFT_TLS_CERT");
  app.add_option("--tls-key", o.tls_key, "PEM key of --tls-cert")->envname("CAFRAFT_TLS_KEY");
  app.add_option("--tls-ca", o.tls_ca, "PEM CA of the cluster")->envname("CAFRAFT_TLS_CA");
  app.add_option("--group", o.group,
                 "The Raft group the command is for, in processes that host many "
                 "(cafraft-node --groups; 0: each process's own)")
      ->capture_default_str()
      ->envname("CAFRAFT_GROUP");
  app.require_subcommand(1);
  std::string key, value, expected, id, address;
  bool absent = false;
  auto* put = app.add_subcommand("put", "Write KEY=VALUE (returns once committed and applied)");
  put->add_option("KEY", key)->required();
  put->add_option("VALUE", value)->required();
  cli::get_options gopts;
  auto* get = app.add_subcommand(
      "get", "Print the value of KEY, or the keys in [KEY, RANGE_END) or with a prefix, in order "
             "(linearizable unless --read says otherwise)");
  get->add_option("KEY", key)->required();
  get->add_option("RANGE_END", gopts.range_end, "A range read: the keys in [KEY, RANGE_END)");
  get->add_flag("--prefix", gopts.prefix, "Every key that starts with KEY");
  get->add_option("--limit", gopts.limit, "At most this many keys of a range (0: all)");
  get->add_option("--read", gopts.read, "Read policy (docs/reads.md)")
      ->check(CLI::IsMember({"linearizable", "lease", "follower", "stale"}))
      ->capture_default_str();
  get->add_option("--min-index", gopts.min_index,
                  "A stale read waits until the node applied this index (read-your-writes "
                  "after a write that returned it)");
  cli::watch_options wopts;
  auto* watch = app.add_subcommand(
      "watch", "Print every change of KEY (or of the keys with its prefix, or in [KEY, "
               "RANGE_END)) in commit order, one line each, until interrupted");
  watch->add_option("KEY", key)->required();
  watch->add_option("RANGE_END", wopts.range_end, "The keys in [KEY, RANGE_END)");
  watch->add_flag("--prefix", wopts.prefix, "Every key that starts with KEY");
  watch->add_option("--from", wopts.from,
                    "The first index to print (a watch that ended resumes from the index after "
                    "its last change); 0: the next change");
  watch->add_option("--count", wopts.count, "Exit after this many changes (0: never)");
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
  auto* group = app.add_subcommand("group", "The Raft groups of the processes (docs/groups.md)");
  group->require_subcommand(1);
  auto* glist = group->add_subcommand(
      "list", "One row per group: leader, term, members, applied index (exit 2 if an endpoint "
              "did not answer)");
  uint64_t group_id = 0;
  std::string group_members;
  auto* gcreate = group->add_subcommand(
      "create", "Start group ID on the processes of --members (default: every member), each "
                "its replica");
  gcreate->add_option("ID", group_id, "The group's id (not 0)")
      ->required()
      ->check(CLI::PositiveNumber);
  gcreate->add_option("--members", group_members, "Member ids, comma separated (n1,n2,n3)");
  auto* balance = app.add_subcommand(
      "balance", "Spread the leaders of the groups evenly over the processes, by leadership "
                 "transfers (exit 2 if a transfer failed or a group has no leader)");
  auto* gremove =
      group->add_subcommand("remove", "Stop group ID on every process and delete its data");
  gremove->add_option("ID", group_id, "The group's id (not 0)")
      ->required()
      ->check(CLI::PositiveNumber);
  std::string file;
  auto* snapshot = app.add_subcommand("snapshot", "Backups of the cluster's state");
  snapshot->require_subcommand(1);
  auto* ssave = snapshot->add_subcommand(
      "save", "Stream a snapshot the leader takes now into FILE (written aside, then renamed)");
  ssave->add_option("FILE", file)->required();
  auto* sstatus = snapshot->add_subcommand(
      "status", "Check backup FILE whole and describe it (needs no cluster; exit 2 if unusable)");
  sstatus->add_option("FILE", file)->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0)
      return app.exit(e);
    std::fprintf(stderr, "cafraftctl: %s (see --help)\n", e.what());
    return cli::exit_usage;
  }
  if (sstatus->parsed()) // a file, no cluster
    return cli::snapshot_status("cafraftctl", file, o.format == "json");
  if (endpoints.empty()) {
    std::fprintf(stderr, "cafraftctl: --endpoints is required (see --help)\n");
    return cli::exit_usage;
  }
  if (auto why = cli::check(o, endpoints); !why.empty()) {
    std::fprintf(stderr, "cafraftctl: %s\n", why.c_str());
    return cli::exit_usage;
  }
  cli::session s{o};
  if (put->parsed())
    return cli::put(s, key, value);
  if (del->parsed())
    return cli::del(s, key);
  if (get->parsed())
    return cli::get(s, key, gopts);
  if (cas->parsed())
    return cli::cas(s, key, expected, value, absent);
  if (watch->parsed())
    return cli::watch(s, key, wopts);
  if (mlist->parsed())
    return cli::member_list(s);
  if (madd->parsed())
    return cli::member_add(s, id, address);
  if (mremove->parsed())
    return cli::member_remove(s, id);
  if (transfer->parsed())
    return cli::leader_transfer(s, id);
  if (leader->parsed())
    return cli::leader(s);
  if (status->parsed())
    return cli::status(s);
  if (glist->parsed())
    return cli::group_list(s);
  if (gcreate->parsed())
    return cli::group_create(s, group_id, group_members);
  if (gremove->parsed())
    return cli::group_remove(s, group_id);
  if (balance->parsed())
    return cli::balance(s);
  if (ssave->parsed())
    return cli::snapshot_save(s, file);
  return cli::exit_usage;
}
