// What many Raft groups cost in one process (docs/performance.md, "Many groups in one
// process"): G groups of R replicas, every replica a node actor tree of this process, wired
// in-process (connect_all per group). Measures the time until every group has a leader, the
// memory per group replica, and the CPU the process uses while every group is idle, with and
// without quiescence (node_config::quiesce_after).
//
//   cafraft-groups-bench [--groups 1000] [--replicas 3] [--quiesce-ms 0] [--idle-s 10]
//                        [--durable DIR] [--threads 2]
//
// Memory storage by default (no disk, no storage thread per node); --durable DIR gives every
// replica its own data directory under DIR with durable storage on the node's actor threads.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <caf/all.hpp>

#include <cafraft/actors/node.hpp>
#include <cafraft/messages/api.hpp>
#include <cafraft/messages/register.hpp>
#include <cafraft/runtime/logging.hpp>
#include <cafraft/runtime/storage.hpp>

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

struct options {
  size_t groups = 1000;
  size_t replicas = 3;
  int64_t quiesce_ms = 0;
  int64_t idle_s = 10;
  std::string durable;
  size_t threads = 2;
};

bool parse(int argc, char** argv, options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--groups" && (v = next()))
      o.groups = std::strtoull(v, nullptr, 10);
    else if (a == "--replicas" && (v = next()))
      o.replicas = std::strtoull(v, nullptr, 10);
    else if (a == "--quiesce-ms" && (v = next()))
      o.quiesce_ms = std::strtoll(v, nullptr, 10);
    else if (a == "--idle-s" && (v = next()))
      o.idle_s = std::strtoll(v, nullptr, 10);
    else if (a == "--durable" && (v = next()))
      o.durable = v;
    else if (a == "--threads" && (v = next()))
      o.threads = std::strtoull(v, nullptr, 10);
    else {
      std::fprintf(stderr,
                   "usage: %s [--groups N] [--replicas R] [--quiesce-ms MS] "
                   "[--idle-s S] [--durable DIR] [--threads T]\n",
                   argv[0]);
      return false;
    }
  }
  return o.groups > 0 && o.replicas > 0 && o.threads > 0;
}

/// Resident memory of this process, in bytes.
uint64_t rss_bytes() {
  long pages = 0, resident = 0;
  if (auto* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2)
      resident = 0;
    std::fclose(f);
  }
  return static_cast<uint64_t>(resident) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

/// CPU time (user + system) this process has used.
std::chrono::microseconds cpu_time() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto us = [](const timeval& t) { return int64_t{t.tv_sec} * 1000000 + t.tv_usec; };
  return std::chrono::microseconds{us(ru.ru_utime) + us(ru.ru_stime)};
}

/// Disk space the files under `dir` take (allocated blocks, preallocation included).
uint64_t disk_bytes(const std::string& dir) {
  uint64_t total = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    struct stat st {};
    if (e.is_regular_file() && ::stat(e.path().c_str(), &st) == 0)
      total += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return total;
}

struct group {
  std::map<std::string, caf::actor> nodes;
};

} // namespace

int main(int argc, char** argv) {
  options o;
  if (!parse(argc, argv, o))
    return 1;
  cafraft::get_logger("")->set_level(spdlog::level::warn); // 1,000s of elections otherwise
  caf::actor_system_config cfg;
  cafraft::register_types(cfg);
  cfg.set("scheduler.max-threads", o.threads);
  caf::actor_system sys{cfg};
  if (!o.durable.empty())
    std::filesystem::remove_all(o.durable);

  auto rss0 = rss_bytes();
  auto t0 = clock_type::now();
  std::vector<group> groups(o.groups);
  for (size_t g = 0; g < o.groups; ++g) {
    std::vector<cafraft::member> members;
    for (size_t r = 1; r <= o.replicas; ++r)
      members.push_back({"n" + std::to_string(r), "n" + std::to_string(r) + ":1"});
    for (auto& m : members) {
      cafraft::node_config nc;
      nc.id = m.id;
      nc.members = members;
      nc.seed = g * 7919 + std::hash<std::string>{}(m.id) % 1000 + 1;
      nc.quiesce_after = std::chrono::milliseconds{o.quiesce_ms};
      if (o.durable.empty())
        nc.storage = std::make_shared<cafraft::memory_storage>();
      else
        nc.data_dir = o.durable + "/g" + std::to_string(g) + "/" + m.id;
      nc.detached_storage = false; // thousands of replicas: no thread each
      auto n = cafraft::spawn_node(sys, nc);
      if (!n) {
        std::fprintf(stderr, "group %zu, %s: %s\n", g, m.id.c_str(),
                     cafraft::render(n.error()).c_str());
        return 1;
      }
      groups[g].nodes[m.id] = *n;
    }
    cafraft::connect_all(groups[g].nodes);
  }
  auto spawned = clock_type::now();

  // Every group has a leader that its first replica knows of.
  caf::scoped_actor self{sys};
  size_t led = 0;
  std::vector<bool> has_leader(o.groups, false);
  while (led < o.groups && clock_type::now() - t0 < 600s) {
    for (size_t g = 0; g < o.groups; ++g) {
      if (has_leader[g])
        continue;
      self->request(groups[g].nodes.begin()->second, 2s, cafraft::leader_atom::value)
          .receive([&](const cafraft::pb::LeaderInfo&) { has_leader[g] = true; },
                   [](const caf::error&) {});
      if (has_leader[g])
        ++led;
    }
    if (led < o.groups)
      std::this_thread::sleep_for(100ms);
  }
  auto all_led = clock_type::now();
  auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
  std::printf("%zu groups of %zu replicas (%s storage, quiesce %s, %zu scheduler threads)\n",
              o.groups, o.replicas, o.durable.empty() ? "memory" : "durable",
              o.quiesce_ms > 0 ? (std::to_string(o.quiesce_ms) + " ms").c_str() : "off", o.threads);
  std::printf("  spawned in %lld ms; every group led %lld ms after the start (%zu of %zu)\n",
              static_cast<long long>(ms(spawned - t0)), static_cast<long long>(ms(all_led - t0)),
              led, o.groups);

  // Settle (quiescence needs quiesce_after of no client), then measure idle CPU.
  std::this_thread::sleep_for(std::chrono::milliseconds{std::max<int64_t>(o.quiesce_ms, 0)} + 2s);
  auto rss1 = rss_bytes();
  auto replicas = static_cast<double>(o.groups * o.replicas);
  std::printf("  memory: %.1f MiB for all, %.1f KiB per group replica\n",
              static_cast<double>(rss1 - rss0) / (1 << 20),
              static_cast<double>(rss1 - rss0) / 1024.0 / replicas);
  auto cpu0 = cpu_time();
  auto w0 = clock_type::now();
  std::this_thread::sleep_for(std::chrono::seconds{o.idle_s});
  auto cpu1 = cpu_time();
  auto wall = std::chrono::duration<double>(clock_type::now() - w0).count();
  std::printf("  idle: %.1f%% of a core over %.0f s (every group idle)\n",
              100.0 * static_cast<double>((cpu1 - cpu0).count()) / 1e6 / wall, wall);

  // How many groups a status finds quiesced.
  size_t asleep = 0;
  for (auto& g : groups)
    for (auto& [id, n] : g.nodes)
      self->request(n, 2s, cafraft::status_atom::value)
          .receive([&](const cafraft::pb::NodeStatus& st) { asleep += st.quiesced() ? 1 : 0; },
                   [](const caf::error&) {});
  std::printf("  %zu of %zu replicas quiesced\n", asleep, o.groups * o.replicas);
  if (!o.durable.empty())
    std::printf("  disk: %.1f MiB for all, %.1f MiB per group replica (each its own WAL)\n",
                static_cast<double>(disk_bytes(o.durable)) / (1 << 20),
                static_cast<double>(disk_bytes(o.durable)) / (1 << 20) / replicas);
  for (auto& g : groups)
    for (auto& [id, n] : g.nodes)
      caf::anon_send_exit(n, caf::exit_reason::user_shutdown);
  if (!o.durable.empty())
    std::filesystem::remove_all(o.durable);
  return 0;
}
