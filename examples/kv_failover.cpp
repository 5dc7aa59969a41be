// The built-in key-value store on three cafraft nodes in one CAF application, through a leader
// crash and a snapshot installed on a follower that fell behind: puts, a compare-and-swap,
// deletes, linearizable and stale reads. Built with the project (build/bin/kv-failover-example)
// and run by ctest (Examples.KvStoreFailoverAndSnapshotInstall); exits 0 when every check holds.
#include <cstdio>
#include <filesystem>

#include <caf/all.hpp>

#include <cafraft/messages/api.hpp>
#include <cafraft/messages/register.hpp>
#include <cafraft/runtime/state_machine.hpp>

#include "example_cluster.hpp"

namespace {

using example::check;

/// The KV store, telling the example how many keys each snapshot it restored held.
class counted_kv : public cafraft::kv_store {
public:
  explicit counted_kv(std::shared_ptr<std::atomic<uint64_t>> restored)
      : restored_(std::move(restored)) {}
  using kv_store::restore;
  bool restore(cafraft::snapshot_source& in) override {
    bool ok = kv_store::restore(in);
    if (ok)
      restored_->store(size());
    return ok;
  }

private:
  std::shared_ptr<std::atomic<uint64_t>> restored_;
};

std::string value_of(cafraft::client& c, const std::string& key, bool stale = false,
                     const std::string& node = {}) {
  auto r = c.get(key, stale, node);
  return r && r->found() ? r->value() : "<none>";
}

/// A compare-and-swap was committed and its expectation held.
bool swapped(const caf::expected<cafraft::pb::WriteResponse>& w) {
  cafraft::pb::KvResult r;
  return w && r.ParseFromString(w->result()) && !r.compare_failed();
}

} // namespace

int main() {
  caf::actor_system_config cfg;
  cafraft::register_types(cfg);
  caf::actor_system sys{cfg};
  auto dir = std::filesystem::temp_directory_path() / "cafraft-kv-example";
  std::filesystem::remove_all(dir);
  example::cluster cl{sys, dir.string(), [](std::shared_ptr<std::atomic<uint64_t>> restored) {
                        return std::make_unique<counted_kv>(std::move(restored));
                      }};
  for (auto& m : cl.members)
    if (!cl.start(m.id))
      return 1;

  auto c = cl.client();
  check(static_cast<bool>(c->put("config/mode", "primary")), "config/mode = primary is committed");
  check(swapped(c->cas("config/mode", "primary", "standby")),
        "a compare-and-swap turns it into standby");
  auto stale_swap = c->cas("config/mode", "primary", "other");
  check(stale_swap && !swapped(stale_swap), "a compare-and-swap on the old value fails");

  // The leader crashes; a new one is elected and every acknowledged write is there.
  auto first = cl.leader();
  cl.crash(first);
  auto second = cl.leader();
  check(!second.empty() && second != first, "a new leader is elected after the crash");
  c = cl.client();
  check(value_of(*c, "config/mode") == "standby",
        "the new leader reads standby (linearizable: through its ReadIndex)");
  check(c->del("config/mode") && value_of(*c, "config/mode") == "<none>",
        "a delete through the new leader");

  // The crashed node comes back from its disk. Then a follower stops while 100 keys are
  // written: the leader snapshots every 20 entries and compacts its log past the follower's.
  check(cl.start(first), "the crashed node restarts from its data directory");
  auto leader = cl.leader();
  auto lagging = cl.other_than(leader);
  cl.crash(lagging);
  c = cl.client();
  bool written = true;
  for (int i = 0; i < 100; ++i)
    written = written && c->put("item/" + std::to_string(i), std::to_string(i * i));
  check(written, "100 keys written while a follower is down");
  check(cl.start(lagging), "the lagging follower restarts");
  c = cl.client();
  check(cl.caught_up(lagging, leader), "the lagging follower caught up");
  // It held no key when it stopped; the leader's newest snapshot is at most 20 entries old.
  check(example::eventually([&] { return cl.restored[lagging]->load() >= 50; }),
        "it caught up from the leader's snapshot (a restore holding most keys it missed)");
  bool same = true;
  for (int i = 0; i < 100; i += 7)
    same =
        same && value_of(*c, "item/" + std::to_string(i), true, lagging) == std::to_string(i * i);
  check(same, "a stale read at the follower sees what the leader wrote");

  cl.stop_all();
  std::filesystem::remove_all(dir);
  std::printf("%s\n", example::failures == 0 ? "all checks passed" : "some checks failed");
  return example::failures == 0 ? 0 : 1;
}
