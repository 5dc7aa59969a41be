// Watches (docs/watches.md) under CAF's test scheduler, in virtual time: every change of the
// watched keys exactly once, in commit order, from the index asked for; a watcher that falls
// behind its buffer is told where to resume and loses nothing when it does; a watch from
// before what a node still holds is told `compacted`.
#include <gtest/gtest.h>

#include <cafraft/messages/errors.hpp>
#include <cafraft/runtime/features.hpp>

#include "cluster_test.hpp"

namespace cafraft::test {
namespace {

struct seen {
  std::vector<pb::WatchEvent> events;
  std::vector<pb::WatchBatch> ends; // a batch with an error ends the watch
  bool answering = true;            // false: never answers, so it falls behind
  std::vector<caf::response_promise> held;
};

std::string text(const std::vector<pb::WatchEvent>& evs) {
  std::string out;
  for (auto& e : evs)
    out += std::to_string(e.index()) + ":" + e.key() + (e.deleted() ? "-" : "=" + e.value()) + " ";
  return out;
}

class Watches : public cluster_test {
protected:
  size_t buffer = 1024;
  uint64_t snapshot_entries = 0;
  std::vector<caf::actor> watchers;

  void TearDown() override {
    for (auto& w : watchers)
      caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
    d.run();
  }

  std::unique_ptr<cluster> make() {
    return std::make_unique<cluster>(sys, 3, 3, nullptr, [this](node_config& nc) {
      nc.feature_level = features::current;
      nc.watch_buffer = buffer;
      nc.snapshot_entries = snapshot_entries;
    });
  }

  caf::actor watcher(std::shared_ptr<seen> s) {
    watchers.push_back(sys.spawn([s](caf::event_based_actor* self) -> caf::behavior {
      return {[self, s](pb::WatchBatch& b) -> caf::result<caf::message> {
        if (b.error() != 0) {
          s->ends.push_back(b);
          return caf::message{};
        }
        for (auto& e : b.events())
          s->events.push_back(e);
        if (s->answering)
          return caf::message{};
        s->held.push_back(self->make_response_promise());
        return s->held.back();
      }};
    }));
    return watchers.back();
  }

  caf::expected<pb::WatchStarted> watch(cluster& c, const std::string& node, const std::string& key,
                                        const std::string& range_end, uint64_t from,
                                        const caf::actor& who) {
    pb::WatchRequest req;
    req.set_key(key);
    req.set_range_end(range_end);
    req.set_from_index(from);
    auto o = ask_with<pb::WatchStarted>(sys, c.nodes.at(node), std::chrono::seconds{1},
                                        watch_atom::value, req, who);
    d.run_until([&] { return o->done; }, 1000ms);
    EXPECT_TRUE(o->done);
    return o->value;
  }

  uint64_t write(cluster& c, const std::string& leader, pb::KvCommand cmd) {
    caf::expected<pb::WriteResponse> w{caf::error{}};
    if (cmd.has_put())
      w = call<pb::WriteResponse>(c, leader, cmd.put());
    else if (cmd.has_del())
      w = call<pb::WriteResponse>(c, leader, cmd.del());
    else
      w = call<pb::WriteResponse>(c, leader, cmd.cas());
    EXPECT_TRUE(w) << render(w.error());
    return w ? w->index() : 0;
  }

  static pb::KvCommand put_cmd(const std::string& k, const std::string& v) {
    pb::KvCommand c;
    *c.mutable_put() = put(k, v);
    return c;
  }
  static pb::KvCommand del_cmd(const std::string& k) {
    pb::KvCommand c;
    c.mutable_del()->set_key(k);
    return c;
  }
  static pb::KvCommand cas_cmd(const std::string& k, const std::string& expected,
                               const std::string& v) {
    pb::KvCommand c;
    c.mutable_cas()->set_key(k);
    c.mutable_cas()->set_expected(expected);
    c.mutable_cas()->set_value(v);
    return c;
  }
};

TEST_F(Watches, DeliverEveryChangeOfTheirRangeOnceInCommitOrder) {
  auto c = make();
  auto leader = wait_leader(*c);
  ASSERT_FALSE(leader.empty());
  auto s = std::make_shared<seen>();
  auto on_follower = std::make_shared<seen>();
  ASSERT_TRUE(watch(*c, leader, "a/", "a0", 0, watcher(s)));
  std::string follower = leader == "n1" ? "n2" : "n1";
  ASSERT_TRUE(watch(*c, follower, "a/", "a0", 0, watcher(on_follower)));
  auto i1 = write(*c, leader, put_cmd("a/1", "x"));
  write(*c, leader, put_cmd("b/1", "not watched"));
  auto i3 = write(*c, leader, cas_cmd("a/1", "x", "y"));
  write(*c, leader, cas_cmd("a/1", "x", "z")); // its compare fails: no change
  auto i5 = write(*c, leader, del_cmd("a/1"));
  write(*c, leader, del_cmd("a/9")); // absent: no change
  d.run_until([] { return false; }, 200ms);
  auto want = std::to_string(i1) + ":a/1=x " + std::to_string(i3) + ":a/1=y " + std::to_string(i5) +
              ":a/1- ";
  EXPECT_EQ(text(s->events), want);
  EXPECT_EQ(text(on_follower->events), want) << "a follower's watch sees the same";
  EXPECT_TRUE(s->ends.empty());
}

TEST_F(Watches, ResumeFromAnIndexAndAWatcherThatFallsBehindIsToldWhere) {
  buffer = 4;
  auto c = make();
  auto leader = wait_leader(*c);
  auto first = write(*c, leader, put_cmd("k", "0"));
  for (int i = 1; i < 10; ++i)
    write(*c, leader, put_cmd("k", std::to_string(i)));
  // A watch from the first write on gets the ten changes from the node's history, in order.
  auto all = std::make_shared<seen>();
  ASSERT_TRUE(watch(*c, leader, "k", "", first, watcher(all)));
  d.run_until([] { return false; }, 100ms);
  ASSERT_EQ(all->events.size(), 10u) << text(all->events);
  for (size_t i = 0; i < 10; ++i)
    EXPECT_EQ(all->events[i].value(), std::to_string(i));
  // A watcher that stops answering: its first batch is out, four more wait, the fifth ends it.
  auto slow = std::make_shared<seen>();
  slow->answering = false;
  ASSERT_TRUE(watch(*c, leader, "k", "", 0, watcher(slow)));
  for (int i = 10; i < 20; ++i)
    write(*c, leader, put_cmd("k", std::to_string(i)));
  d.run_until([&] { return !slow->ends.empty(); }, 500ms);
  ASSERT_EQ(slow->ends.size(), 1u);
  EXPECT_EQ(slow->ends[0].error(), static_cast<uint32_t>(errc::watch_overflow));
  ASSERT_FALSE(slow->events.empty());
  EXPECT_EQ(slow->ends[0].last_index(), slow->events.back().index()) << "the last index delivered";
  // It resumes after the last index it got, and misses nothing.
  auto resumed = std::make_shared<seen>();
  ASSERT_TRUE(watch(*c, leader, "k", "", slow->ends[0].last_index() + 1, watcher(resumed)));
  d.run_until([] { return false; }, 100ms);
  auto got = slow->events;
  got.insert(got.end(), resumed->events.begin(), resumed->events.end());
  ASSERT_EQ(got.size(), 10u) << text(got);
  for (size_t i = 0; i < 10; ++i)
    EXPECT_EQ(got[i].value(), std::to_string(10 + i));
}

TEST_F(Watches, AWatchFromBeforeWhatTheNodeHoldsIsToldCompacted) {
  snapshot_entries = 5;
  auto c = make();
  auto leader = wait_leader(*c);
  for (int i = 0; i < 20; ++i)
    write(*c, leader, put_cmd("k" + std::to_string(i), "v"));
  // After a restart the node holds the changes after its snapshot only.
  c->stop(leader);
  c->restart(leader);
  wait_leader(*c);
  d.run_until([] { return false; }, 300ms);
  auto s = std::make_shared<seen>();
  auto w = watch(*c, leader, "", std::string(1, '\0'), 1, watcher(s));
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code(), static_cast<uint8_t>(errc::compacted)) << render(w.error());
  EXPECT_NE(render(w.error()).find("watch from index"), std::string::npos) << render(w.error());
}

TEST_F(Watches, AreForTheKvStoreOnly) {
  auto c = std::make_unique<cluster>(sys, 1, 3, nullptr, [](node_config& nc) {
    nc.make_state_machine = [] { return std::unique_ptr<state_machine>(new kv_store); };
  });
  // A kv_store made by the user is still the KV store: watches work.
  auto leader = wait_leader(*c);
  auto s = std::make_shared<seen>();
  EXPECT_TRUE(watch(*c, leader, "k", "", 0, watcher(s)));
  EXPECT_FALSE(watch(*c, leader, "k", "", 0, caf::actor{})) << "a watch without a watcher";
}

} // namespace
} // namespace cafraft::test
