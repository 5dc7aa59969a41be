// Durable storage on the real disk: entries per second and fdatasync calls per entry, with
// group commit (many batches, one write) against one write, and so one fsync, per entry, and
// with space reserved ahead of the writes (the default) against segments that grow.
// Run: build/bin/cafraft-storage-bench --benchmark_filter=Wal  (figures in docs/storage.md)
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>

#include <cafraft/runtime/durable_storage.hpp>
#include <cafraft/runtime/logging.hpp>

namespace {

using namespace cafraft;

void run(benchmark::State& state, size_t group, bool reserve = true) {
  char tmpl[] = "/tmp/cafraft-bench-XXXXXX";
  if (!::mkdtemp(tmpl)) {
    state.SkipWithError("mkdtemp failed");
    return;
  }
  get_logger("bench")->set_level(spdlog::level::warn);
  durable_options opts;
  opts.dir = std::string{tmpl} + "/n1";
  opts.node_id = "n1";
  opts.logger_name = "bench";
  if (!reserve)
    opts.preallocate_bytes = 0;
  uint64_t entries = 0, syncs = 0;
  {
    durable_storage s{opts};
    s.load();
    auto before = s.syncs();
    std::string payload(128, 'x');
    for (auto _ : state) {
      std::vector<persist_batch> batches(group);
      for (auto& b : batches) {
        pb::LogEntry e;
        e.set_index(++entries);
        e.set_term(1);
        e.set_data(payload);
        b.entries.push_back(std::move(e));
      }
      s.write(batches);
    }
    syncs = s.syncs() - before;
  }
  std::filesystem::remove_all(tmpl);
  state.SetItemsProcessed(static_cast<int64_t>(entries));
  state.counters["fsyncs_per_entry"] =
      entries ? static_cast<double>(syncs) / static_cast<double>(entries) : 0;
}

void WalOneFsyncPerEntry(benchmark::State& state) {
  run(state, 1);
}

void WalOneFsyncPerEntryGrowing(benchmark::State& state) {
  run(state, 1, false);
}

void WalGroupCommit(benchmark::State& state) {
  run(state, static_cast<size_t>(state.range(0)));
}

BENCHMARK(WalOneFsyncPerEntry)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(WalOneFsyncPerEntryGrowing)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(WalGroupCommit)->Arg(16)->Arg(64)->Arg(256)->UseRealTime()->Unit(benchmark::kMicrosecond);

} // namespace

BENCHMARK_MAIN();
