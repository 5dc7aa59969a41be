// Lease reads (READ_LEASE, docs/reads.md) under CAF's test scheduler, in virtual time, with the
// nodes' clocks skewed (node_config::clock_rate): the leader answers without a round trip
// while its lease holds, stops once it runs out, and a leader whose clock runs slower than the
// drift bound allows is what makes a lease read stale.
#include <gtest/gtest.h>

#include <cafraft/messages/errors.hpp>

#include "cluster_test.hpp"

namespace cafraft::test {
namespace {

pb::GetRequest lease_get(const std::string& key) {
  pb::GetRequest req;
  req.set_key(key);
  req.set_policy(pb::READ_LEASE);
  return req;
}

class LeaseReads : public cluster_test {
protected:
  std::shared_ptr<network> net = std::make_shared<network>(9);
  double n1_rate = 1.0; // n1's clock against the others'

  std::unique_ptr<cluster> make() {
    return std::make_unique<cluster>(sys, 3, 9, net, [this](node_config& nc) {
      nc.lease_reads = true;
      nc.clock_drift_ppm = 50000; // 5%
      if (nc.id == "n1")
        nc.clock_rate = n1_rate;
    });
  }

  /// n1 leads, its lease renewed a moment ago, and every node holds "k" = "one".
  void n1_leads(cluster& c) {
    auto leader = wait_leader(c);
    ASSERT_FALSE(leader.empty());
    if (leader != "n1") {
      pb::TransferLeadershipRequest t;
      t.set_target("n1");
      ASSERT_TRUE(call<pb::LeaderInfo>(c, leader, t));
      ASSERT_EQ(wait_leader(c), "n1");
    }
    ASSERT_TRUE(call<pb::WriteResponse>(c, "n1", put("k", "one")));
    d.run_until([] { return false; }, 300ms);
  }

  /// n1 is cut off; the others elect a leader among them and write "two". Returns it.
  std::string others_move_on(cluster& c) {
    net->isolate("n1", c.ids);
    std::string next;
    d.run_until(
        [&] {
          for (auto& id : {"n2", "n3"}) {
            auto st = c.ask<pb::NodeStatus>(id, status_atom::value, 100ms);
            d.run_until([&] { return st->done; }, 100ms);
            if (st->value && st->value->role() == "leader")
              next = id;
          }
          return !next.empty();
        },
        2000ms);
    if (!next.empty()) {
      EXPECT_TRUE(call<pb::WriteResponse>(c, next, put("k", "two"), 500ms));
    }
    return next;
  }
};

TEST_F(LeaseReads, TheLeaderAnswersWithoutARoundTripWhileItsLeaseHolds) {
  auto c = make();
  n1_leads(*c);
  // n1's messages stop reaching the others: a ReadIndex read cannot be confirmed, a lease read
  // needs no confirmation while the lease lasts.
  for (auto& id : c->ids)
    if (id != "n1")
      net->cut.insert({"n1", id});
  auto lease = c->ask<pb::GetResponse>("n1", lease_get("k"), 1000ms);
  pb::GetRequest plain;
  plain.set_key("k");
  auto index = c->ask<pb::GetResponse>("n1", plain, 1000ms);
  d.run_until([&] { return lease->done; }, 20ms);
  ASSERT_TRUE(lease->done) << "a lease read waited for a round trip";
  ASSERT_TRUE(lease->value) << render(lease->value.error());
  EXPECT_EQ(lease->value->value(), "one");
  EXPECT_FALSE(index->done) << "a ReadIndex read was confirmed without a majority";
}

TEST_F(LeaseReads, ALeaderCutOffStopsAnsweringFromItsLeaseWhenItRunsOut) {
  auto c = make();
  n1_leads(*c);
  net->isolate("n1", c->ids);
  d.run_until([] { return false; }, 150ms); // longer than any lease (142.5 ms)
  auto r = c->ask<pb::GetResponse>("n1", lease_get("k"), 1000ms);
  d.run_until([&] { return r->done; }, 50ms);
  EXPECT_FALSE(r->done && r->value) << "answered from a lease that ran out";
}

// Within the drift bound (n1's clock 3% slow, the bound 5%), the others cannot elect a leader
// before n1's lease has run out: a lease read on n1 after they wrote never returns the old
// value.
TEST_F(LeaseReads, SkewWithinTheBoundKeepsLeaseReadsLinearizable) {
  n1_rate = 0.97;
  auto c = make();
  n1_leads(*c);
  auto next = others_move_on(*c);
  ASSERT_FALSE(next.empty()) << "the others elected no leader";
  auto r = c->ask<pb::GetResponse>("n1", lease_get("k"), 1000ms);
  d.run_until([&] { return r->done; }, 1000ms);
  if (r->done && r->value) {
    EXPECT_NE(r->value->value(), "one") << "a stale lease read within the drift bound";
  }
}

// Beyond the bound (n1's clock 60% slow), n1 believes in its lease long after the others may
// elect: the same read returns the value the new leader replaced. The bound is what makes
// lease reads safe.
TEST_F(LeaseReads, SkewBeyondTheBoundIsWhatBreaksALeaseRead) {
  n1_rate = 0.4;
  auto c = make();
  n1_leads(*c);
  auto next = others_move_on(*c);
  ASSERT_FALSE(next.empty()) << "the others elected no leader";
  auto r = c->ask<pb::GetResponse>("n1", lease_get("k"), 1000ms);
  d.run_until([&] { return r->done; }, 50ms);
  ASSERT_TRUE(r->done && r->value) << "n1 did not answer from its lease";
  EXPECT_EQ(r->value->value(), "one") << "expected the stale read that a broken bound allows";
}

TEST_F(LeaseReads, NeedCheckQuorumAndPreVote) {
  node_config nc;
  nc.id = "n1";
  nc.members = {{"n1", "a:1"}};
  nc.storage = std::make_shared<memory_storage>();
  nc.lease_reads = true;
  nc.check_quorum = false;
  EXPECT_NE(validate(nc).find("check-quorum"), std::string::npos) << validate(nc);
  nc.check_quorum = true;
  EXPECT_EQ(validate(nc), "");
}

} // namespace
} // namespace cafraft::test
