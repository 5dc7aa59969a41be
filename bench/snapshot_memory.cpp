// Memory during a snapshot of a large KV state (docs/performance.md, "Streamed snapshots"):
// fills a kv_store with about 1 GiB of values, then measures the peak resident memory above
// the filled store while
//   1. the snapshot is streamed to durable storage in 1 MiB chunks, as the state machine's
//      snapshot writer does, with writes applied between the chunks (copy-on-write shards);
//   2. a fresh store is restored from it, reading the file in pieces;
//   3. for comparison, the whole snapshot is built as one string (what a snapshot cost before
//      it was streamed).
// Usage: cafraft-snapshot-memory [GiB=1] [DIR=/tmp]. Peak RSS is VmHWM, reset through
// /proc/self/clear_refs before each phase.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include <malloc.h>
#include <string>

#include <cafraft/messages/raft.pb.h>
#include <cafraft/runtime/durable_storage.hpp>
#include <cafraft/runtime/state_machine.hpp>

namespace {

uint64_t status_kib(const char* field) {
  std::ifstream in{"/proc/self/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field, 0) == 0)
      return std::strtoull(line.c_str() + std::string{field}.size(), nullptr, 10);
  return 0;
}

void reset_peak() {
  std::ofstream{"/proc/self/clear_refs"} << "5";
}

double mib(uint64_t kib) {
  return static_cast<double>(kib) / 1024.0;
}

std::string put(const std::string& key, const std::string& value) {
  cafraft::pb::KvCommand cmd;
  cmd.mutable_put()->set_key(key);
  cmd.mutable_put()->set_value(value);
  return cmd.SerializeAsString();
}

struct chunk_sink : cafraft::snapshot_sink {
  void write(std::string_view bytes) override { out.append(bytes); }
  std::string out;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

} // namespace

int main(int argc, char** argv) {
  double gib = argc > 1 ? std::atof(argv[1]) : 1.0;
  std::string base = argc > 2 ? argv[2] : "/tmp";
  auto dir = base + "/cafraft-snapshot-memory";
  std::filesystem::remove_all(dir);
  constexpr size_t value_bytes = 1024;
  auto keys = static_cast<uint64_t>(gib * (1ull << 30) / value_bytes);

  auto rss0 = status_kib("VmRSS:");
  auto kv = std::make_unique<cafraft::kv_store>();
  std::string value(value_bytes, 'v');
  uint64_t index = 0;
  for (uint64_t i = 0; i < keys; ++i)
    kv->apply(++index, put("key-" + std::to_string(i), value));
  auto filled = status_kib("VmRSS:");
  std::printf("state: %llu keys of %zu bytes (%.0f MiB of values); RSS %.0f MiB (%.0f MiB "
              "for the store)\n",
              static_cast<unsigned long long>(keys), value_bytes,
              static_cast<double>(keys * value_bytes) / (1 << 20), mib(filled), mib(filled - rss0));

  // 1. Streamed to storage in 1 MiB chunks, writes applied in between.
  cafraft::durable_options opts;
  opts.dir = dir;
  opts.node_id = "n1";
  cafraft::durable_storage store{opts};
  store.load();
  cafraft::pb::SnapshotMeta meta;
  meta.set_index(index);
  meta.set_term(1);
  std::mt19937_64 rng{1};
  uint64_t writes = 0;
  reset_peak();
  auto t0 = std::chrono::steady_clock::now();
  auto writer = kv->prepare_snapshot();
  store.save_begin(meta);
  chunk_sink chunk;
  bool more = true;
  while (more) {
    while (chunk.out.size() < (1u << 20) && (more = writer->write_next(chunk))) {
    }
    store.save_append(chunk.out);
    chunk.out.clear();
    for (int w = 0; w < 4; ++w, ++writes) // overwrite random keys while the writer runs
      kv->apply(++index, put("key-" + std::to_string(rng() % keys), "changed"));
  }
  auto saved = store.save_finish();
  writer.reset();
  auto save_s = seconds_since(t0);
  auto save_peak = status_kib("VmHWM:");
  std::printf("streamed save: %.0f MiB in %.1f s with %llu writes applied meanwhile; peak RSS "
              "%.0f MiB, %.0f MiB above the filled store\n",
              static_cast<double>(saved.size()) / (1 << 20), save_s,
              static_cast<unsigned long long>(writes), mib(save_peak), mib(save_peak - filled));

  // 3 (before 2, while the store is still here). The whole snapshot as one string.
  reset_peak();
  t0 = std::chrono::steady_clock::now();
  {
    auto whole = cafraft::snapshot_to_string(*kv);
    auto whole_peak = status_kib("VmHWM:");
    std::printf("whole-string snapshot (before streaming): %.0f MiB in %.1f s; peak RSS %.0f "
                "MiB, %.0f MiB above the filled store\n",
                static_cast<double>(whole.size()) / (1 << 20), seconds_since(t0), mib(whole_peak),
                mib(whole_peak - filled));
  }

  // 2. Restored into a fresh store from the file, read in pieces.
  kv.reset();
  ::malloc_trim(0); // the freed store goes back to the system: RSS shows the restore alone
  auto empty = status_kib("VmRSS:");
  reset_peak();
  t0 = std::chrono::steady_clock::now();
  cafraft::kv_store restored;
  auto in = store.open_snapshot();
  bool ok = in && restored.restore(*in);
  auto restore_peak = status_kib("VmHWM:");
  auto after = status_kib("VmRSS:");
  std::printf("restore: %s, %zu keys in %.1f s; peak RSS %.0f MiB: %.0f MiB above the empty "
              "process, of which the restored store keeps %.0f MiB\n",
              ok ? "ok" : "FAILED", restored.size(), seconds_since(t0), mib(restore_peak),
              mib(restore_peak - empty), mib(after - empty));
  std::filesystem::remove_all(dir);
  return ok ? 0 : 1;
}
