// A user's own state machine end to end (proposals and queries in its own format, answered
// linearizably), and snapshots streamed in chunks while applies go on.
#include <algorithm>
#include <mutex>

#include <gtest/gtest.h>

#include <cafraft/runtime/state_machine.hpp>

#include "cluster_test.hpp"

namespace cafraft::test {
namespace {

// A machine that is not a KV store: an append-only journal. A command is a line to append
// (the result: its position); a query is "count" or "line N".
class journal : public state_machine {
public:
  std::string apply(uint64_t, const std::string& command) override {
    lines_.push_back(command);
    return "#" + std::to_string(lines_.size());
  }
  std::string query(const std::string& q) const override {
    if (q == "count")
      return std::to_string(lines_.size());
    if (q.rfind("line ", 0) == 0) {
      auto n = std::stoul(q.substr(5));
      return n >= 1 && n <= lines_.size() ? lines_[n - 1] : "no such line";
    }
    return "unknown query";
  }
  std::unique_ptr<snapshot_writer> prepare_snapshot() override {
    std::string out;
    for (auto& l : lines_)
      out += l + "\n";
    return write_string(std::move(out));
  }
  bool restore(snapshot_source& in) override {
    auto all = read_all(in);
    std::vector<std::string> lines;
    size_t pos = 0;
    while (pos < all.size()) {
      auto nl = all.find('\n', pos);
      if (nl == std::string::npos)
        return false;
      lines.push_back(all.substr(pos, nl - pos));
      pos = nl + 1;
    }
    lines_ = std::move(lines);
    return true;
  }

private:
  std::vector<std::string> lines_;
};

// What a probe saw, in order: "apply N" for each applied index, "piece" for each piece of a
// snapshot written. Shared by every node's machine.
struct probe_log {
  std::mutex mtx;
  std::vector<std::string> events;
  void add(std::string e) {
    std::lock_guard<std::mutex> guard{mtx};
    events.push_back(std::move(e));
  }
};

// The KV store with its snapshot writer watched.
class probed_kv : public kv_store {
public:
  probed_kv(std::shared_ptr<probe_log> log, bool record) : log_(std::move(log)), record_(record) {}
  std::string apply(uint64_t index, const std::string& command) override {
    if (record_)
      log_->add("apply " + std::to_string(index));
    return kv_store::apply(index, command);
  }
  std::unique_ptr<snapshot_writer> prepare_snapshot() override {
    struct watched : snapshot_writer {
      std::unique_ptr<snapshot_writer> inner;
      std::shared_ptr<probe_log> log;
      bool record;
      bool write_next(snapshot_sink& out) override {
        bool more = inner->write_next(out);
        if (more && record)
          log->add("piece");
        return more;
      }
    };
    auto w = std::make_unique<watched>();
    w->inner = kv_store::prepare_snapshot();
    w->log = log_;
    w->record = record_;
    return w;
  }

private:
  std::shared_ptr<probe_log> log_;
  bool record_;
};

class StateMachineTest : public cluster_test {};

pb::ProposeRequest propose(const std::string& data) {
  pb::ProposeRequest req;
  req.set_data(data);
  return req;
}

pb::QueryRequest query(const std::string& q, bool stale = false) {
  pb::QueryRequest req;
  req.set_query(q);
  req.set_stale(stale);
  return req;
}

TEST_F(StateMachineTest, AUsersMachineTakesItsOwnCommandsAndAnswersItsOwnQueries) {
  cluster c{sys, 3, 1, nullptr, [](node_config& nc) {
              nc.make_state_machine = [] { return std::make_unique<journal>(); };
            }};
  auto leader = wait_leader(c);
  ASSERT_FALSE(leader.empty());
  for (auto line : {"first", "second", "third"}) {
    auto w = call<pb::WriteResponse>(c, leader, propose(line));
    ASSERT_TRUE(w) << render(w.error());
    EXPECT_EQ(w->result()[0], '#'); // the machine's own result
  }
  // Linearizable on the leader: the answer is the machine's, read after every write above.
  auto n = call<pb::QueryResponse>(c, leader, query("count"));
  ASSERT_TRUE(n) << render(n.error());
  EXPECT_EQ(n->answer(), "3");
  auto second = call<pb::QueryResponse>(c, leader, query("line 2"));
  ASSERT_TRUE(second);
  EXPECT_EQ(second->answer(), "second");
  EXPECT_GE(second->applied_index(), 4u); // the leader's no-op and three lines
  // A follower redirects a linearizable query to the leader, and answers a stale one itself.
  std::string follower = leader == "n1" ? "n2" : "n1";
  auto redirected = call<pb::QueryResponse>(c, follower, query("count"));
  ASSERT_FALSE(redirected);
  EXPECT_EQ(redirected.error().code(), static_cast<uint8_t>(errc::not_leader));
  ASSERT_TRUE(d.run_until(
      [&] {
        auto s = call<pb::QueryResponse>(c, follower, query("count", true));
        return s && s->answer() == "3";
      },
      1000ms));
  // In a batch, a query is answered like the others.
  pb::BatchRequest batch;
  *batch.add_items()->mutable_propose() = propose("fourth");
  *batch.add_items()->mutable_query() = query("count");
  auto b = call<pb::BatchResponse>(c, leader, batch);
  ASSERT_TRUE(b);
  ASSERT_EQ(b->results_size(), 2);
  ASSERT_TRUE(b->results(1).has_query());
  EXPECT_EQ(b->results(1).query().answer(), "4");
  // The KV requests mean nothing to this machine: a get says so instead of guessing.
  auto g = call<pb::GetResponse>(c, leader, get("k"));
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code(), static_cast<uint8_t>(errc::invalid_request));
}

TEST_F(StateMachineTest, AUsersMachineRestartsAndCatchesUpFromItsOwnSnapshots) {
  cluster c{sys, 3, 1, nullptr, [](node_config& nc) {
              nc.make_state_machine = [] { return std::make_unique<journal>(); };
              nc.snapshot_entries = 5;
            }};
  auto leader = wait_leader(c);
  ASSERT_FALSE(leader.empty());
  std::string lagging = leader == "n3" ? "n2" : "n3";
  c.stop(lagging);
  for (int i = 1; i <= 12; ++i)
    ASSERT_TRUE(call<pb::WriteResponse>(c, leader, propose("line-" + std::to_string(i))));
  auto restores = c.checker->restores;
  c.restart(lagging);
  ASSERT_TRUE(d.run_until(
      [&] {
        auto s = call<pb::QueryResponse>(c, lagging, query("count", true));
        return s && s->answer() == "12";
      },
      3000ms));
  EXPECT_GT(c.checker->restores, restores) << "it caught up from the leader's snapshot";
  auto l7 = call<pb::QueryResponse>(c, lagging, query("line 7", true));
  ASSERT_TRUE(l7);
  EXPECT_EQ(l7->answer(), "line-7");
}

// The snapshot is written a chunk at a time by an actor of its own: entries committed while it
// is written are applied before it is done, and what it wrote is the state at its index.
TEST_F(StateMachineTest, ASnapshotIsWrittenInChunksWhileApplyGoesOn) {
  auto log = std::make_shared<probe_log>();
  cluster c{sys, 3, 1, nullptr, [log](node_config& nc) {
              nc.make_state_machine = [log, id = nc.id] {
                return std::make_unique<probed_kv>(log, id == "n1");
              };
              nc.snapshot_entries = 40;
              nc.snapshot_chunk_bytes = 64;
              nc.election_timeout_min = std::chrono::milliseconds{5000}; // n1 leads throughout
              nc.election_timeout_max = std::chrono::milliseconds{5001};
              if (nc.id == "n1") {
                nc.election_timeout_min = std::chrono::milliseconds{150};
                nc.election_timeout_max = std::chrono::milliseconds{151};
              }
            }};
  auto leader = wait_leader(c, 6000ms);
  ASSERT_EQ(leader, "n1");
  auto pieces_seen = [&] {
    std::lock_guard<std::mutex> guard{log->mtx};
    return std::count(log->events.begin(), log->events.end(), "piece");
  };
  // One job at a time, so that the next write goes out while the snapshot is being written.
  auto step = [&] {
    if (d.run(1) == 0)
      d.sched.advance_time(1ms);
  };
  // Writes one at a time until the snapshot has begun (after 40 entries).
  for (int i = 0; i < 60 && pieces_seen() == 0; ++i) {
    auto w =
        c.ask<pb::WriteResponse>(leader, put("key" + std::to_string(i), std::string(100, 'v')));
    for (int n = 0; n < 100000 && !w->done && pieces_seen() == 0; ++n)
      step();
  }
  ASSERT_GT(pieces_seen(), 0);
  // A write while the writer is under way is applied before the writer is done.
  auto late = c.ask<pb::WriteResponse>(leader, put("late", "x"));
  ASSERT_TRUE(d.run_until([&] { return late->done; }, 1000ms));
  ASSERT_TRUE(late->value);
  d.advance(200ms); // the snapshot is done
  std::lock_guard<std::mutex> guard{log->mtx};
  auto& ev = log->events;
  auto first = std::find(ev.begin(), ev.end(), "piece");
  auto last = std::find(ev.rbegin(), ev.rend(), "piece").base();
  ASSERT_NE(first, ev.end());
  auto pieces = std::count(first, last, "piece");
  auto applies_meanwhile =
      std::count_if(first, last, [](auto& e) { return e.rfind("apply", 0) == 0; });
  EXPECT_GE(pieces, 20) << "one piece per shard that holds keys";
  EXPECT_GT(applies_meanwhile, 0) << "applies waited for the whole snapshot";
}

// Range reads of the KV store: the keys of [key, range_end) in order across its shards, at
// most `limit` with `more` set when more are, "\0" as the end of every key.
TEST(KvRangeRead, ReturnsTheKeysOfARangeInOrderUpToTheLimit) {
  kv_store kv;
  uint64_t index = 0;
  for (auto k : {"b", "a", "c/2", "c/1", "c/10", "d", "c"}) {
    pb::KvCommand cmd;
    cmd.mutable_put()->set_key(k);
    cmd.mutable_put()->set_value(std::string{"v"} + k);
    kv.apply(++index, cmd.SerializeAsString());
  }
  auto range = [&](std::string from, std::string end, uint32_t limit = 0) {
    pb::KvQuery q;
    q.set_key(std::move(from));
    q.set_range_end(std::move(end));
    q.set_limit(limit);
    pb::GetResponse r;
    EXPECT_TRUE(r.ParseFromString(kv.query(q.SerializeAsString())));
    std::string keys;
    for (auto& x : r.kvs()) {
      EXPECT_EQ(x.value(), "v" + x.key());
      keys += x.key() + " ";
    }
    return keys + (r.more() ? "+" : ".");
  };
  EXPECT_EQ(range("c/", "c0"), "c/1 c/10 c/2 ."); // the prefix "c/"
  EXPECT_EQ(range("b", "c/2"), "b c c/1 c/10 ."); // the end is left out
  EXPECT_EQ(range("", std::string(1, '\0')), "a b c c/1 c/10 c/2 d .");
  EXPECT_EQ(range("c", std::string(1, '\0'), 2), "c c/1 +");
  EXPECT_EQ(range("c", "c/1", 1), "c ."); // exactly the limit: no more
  EXPECT_EQ(range("x", "z"), ".");
  pb::KvQuery one;
  one.set_key("d");
  pb::GetResponse r;
  ASSERT_TRUE(r.ParseFromString(kv.query(one.SerializeAsString())));
  EXPECT_TRUE(r.found());
  EXPECT_EQ(r.value(), "vd");
  EXPECT_EQ(r.kvs_size(), 0);
}

} // namespace
} // namespace cafraft::test
