// The read policies (docs/reads.md) under CAF's test scheduler, in virtual time: a follower
// read asks the leader for its read index and answers only once the follower has applied that
// far, so a follower that lags never answers stale; without a leader it fails rather than
// guess; a stale read with min_index waits for its index; range reads go through every policy.
#include <gtest/gtest.h>

#include <cafraft/messages/errors.hpp>
#include <cafraft/runtime/features.hpp>

#include "cluster_test.hpp"

namespace cafraft::test {
namespace {

pb::GetRequest get_with(const std::string& key, pb::ReadPolicy policy, uint64_t min_index = 0) {
  pb::GetRequest req;
  req.set_key(key);
  req.set_policy(policy);
  req.set_min_index(min_index);
  return req;
}

bool is(const caf::error& e, errc c) {
  return e.category() == error_category && e.code() == static_cast<uint8_t>(c);
}

class ReadPolicies : public cluster_test {
protected:
  std::shared_ptr<network> net = std::make_shared<network>(5);
  uint32_t level = features::current;

  std::unique_ptr<cluster> make() {
    return std::make_unique<cluster>(sys, 3, 5, net,
                                     [this](node_config& nc) { nc.feature_level = level; });
  }

  std::string ready(cluster& c) {
    wait_leader(c);
    d.run_until(
        [&] {
          auto st = statuses(c, d);
          for (auto& [id, s] : st)
            if (s.cluster_level() < level)
              return false;
          return st.size() == c.nodes.size();
        },
        3000ms);
    return wait_leader(c);
  }

  std::string follower_of(cluster& c, const std::string& leader) {
    for (auto& id : c.ids)
      if (id != leader)
        return id;
    return {};
  }
};

TEST_F(ReadPolicies, AFollowerReadWaitsUntilTheFollowerAppliedTheLeadersReadIndex) {
  auto c = make();
  auto leader = ready(*c);
  ASSERT_FALSE(leader.empty());
  auto f = follower_of(*c, leader);
  ASSERT_TRUE(call<pb::WriteResponse>(*c, leader, put("k", "one")));
  d.run_until([] { return false; }, 200ms); // every node has applied "one"
  // The follower stops receiving entries (its heartbeats still come, so it follows the same
  // leader); the others commit "two".
  net->script = [&](const std::string&, const std::string& to, caf::message& m) {
    if (to != f || !m.match_elements<pb::AppendEntries>())
      return false;
    auto& ae = m.get_mutable_as<pb::AppendEntries>(0);
    ae.clear_entries();
    ae.set_leader_commit(std::min(ae.leader_commit(), ae.prev_log_index()));
    return false;
  };
  auto two = call<pb::WriteResponse>(*c, leader, put("k", "two"));
  ASSERT_TRUE(two);
  auto stale = call<pb::GetResponse>(*c, f, get_with("k", pb::READ_STALE));
  ASSERT_TRUE(stale);
  EXPECT_EQ(stale->value(), "one") << "the follower was meant to lag";
  // A follower read is linearizable: it must not answer "one", and waits instead.
  auto r = c->ask<pb::GetResponse>(f, get_with("k", pb::READ_FOLLOWER), 3000ms);
  d.run_until([&] { return r->done; }, 300ms);
  EXPECT_FALSE(r->done) << "answered before applying the read index: "
                        << (r->value ? r->value->value() : render(r->value.error()));
  net->script = nullptr; // the entries arrive
  d.run_until([&] { return r->done; }, 2000ms);
  ASSERT_TRUE(r->done);
  ASSERT_TRUE(r->value) << render(r->value.error());
  EXPECT_EQ(r->value->value(), "two");
  EXPECT_GE(r->value->applied_index(), two->index());
}

TEST_F(ReadPolicies, AFollowerCutOffFromItsLeaderFailsAFollowerReadInsteadOfGuessing) {
  auto c = make();
  auto leader = ready(*c);
  auto f = follower_of(*c, leader);
  ASSERT_TRUE(call<pb::WriteResponse>(*c, leader, put("k", "one")));
  net->isolate(leader, c->ids); // the others elect a new leader; f does not know yet
  auto r = c->ask<pb::GetResponse>(f, get_with("k", pb::READ_FOLLOWER), 5000ms);
  d.run_until([&] { return r->done; }, 5000ms);
  ASSERT_TRUE(r->done);
  // Either the old leader never answered (unknown_leader), or a new leader gave its index.
  if (!r->value)
    EXPECT_TRUE(is(r->value.error(), errc::unknown_leader)) << render(r->value.error());
  else
    EXPECT_EQ(r->value->value(), "one");
  // Under a new leader, writes and follower reads go on.
  net->heal();
  auto now = wait_leader(*c);
  ASSERT_FALSE(now.empty());
  ASSERT_TRUE(call<pb::WriteResponse>(*c, now, put("k", "two")));
  for (auto& id : c->ids) {
    if (id == leader || id == now)
      continue;
    auto g = call<pb::GetResponse>(*c, id, get_with("k", pb::READ_FOLLOWER));
    ASSERT_TRUE(g) << render(g.error());
    EXPECT_EQ(g->value(), "two");
  }
}

TEST_F(ReadPolicies, AStaleReadWithMinIndexWaitsForThatIndex) {
  auto c = make();
  auto leader = ready(*c);
  auto f = follower_of(*c, leader);
  net->script = [&](const std::string&, const std::string& to, caf::message& m) {
    return to == f && m.match_elements<pb::AppendEntries>();
  };
  auto w = call<pb::WriteResponse>(*c, leader, put("k", "v"));
  ASSERT_TRUE(w);
  auto r = c->ask<pb::GetResponse>(f, get_with("k", pb::READ_STALE, w->index()), 3000ms);
  d.run_until([&] { return r->done; }, 300ms);
  EXPECT_FALSE(r->done) << "a read with min_index answered before that index was applied";
  net->script = nullptr;
  d.run_until([&] { return r->done; }, 2000ms);
  ASSERT_TRUE(r->done && r->value);
  EXPECT_EQ(r->value->value(), "v");
}

TEST_F(ReadPolicies, RangeReadsGoThroughEveryPolicy) {
  auto c = make();
  auto leader = ready(*c);
  for (auto k : {"a/1", "a/2", "a/3", "b"})
    ASSERT_TRUE(call<pb::WriteResponse>(*c, leader, put(k, std::string{"v"} + k)));
  d.run_until([] { return false; }, 200ms);
  for (auto policy : {pb::READ_LINEARIZABLE, pb::READ_FOLLOWER, pb::READ_STALE})
    for (auto& id : c->ids) {
      if (policy == pb::READ_LINEARIZABLE && id != leader)
        continue;
      auto req = get_with("a/", policy);
      req.set_range_end("a0");
      req.set_limit(2);
      auto r = call<pb::GetResponse>(*c, id, req);
      ASSERT_TRUE(r) << id << ": " << render(r.error());
      ASSERT_EQ(r->kvs_size(), 2) << id;
      EXPECT_EQ(r->kvs(0).key(), "a/1");
      EXPECT_EQ(r->kvs(1).key(), "a/2");
      EXPECT_TRUE(r->more());
    }
}

TEST_F(ReadPolicies, FollowerReadsWaitForTheirFeatureLevel) {
  level = features::cluster_level_entries;
  auto c = make();
  auto leader = ready(*c);
  auto r = call<pb::GetResponse>(*c, follower_of(*c, leader), get_with("k", pb::READ_FOLLOWER));
  ASSERT_FALSE(r);
  EXPECT_TRUE(is(r.error(), errc::invalid_request)) << render(r.error());
}

} // namespace
} // namespace cafraft::test
