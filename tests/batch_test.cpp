// Batched client requests: a node answers a pb::BatchRequest item by item, as if each item had
// come alone, and the batcher gathers concurrent callers' requests into few batches. Under
// CAF's test scheduler, in virtual time.
#include <gtest/gtest.h>

#include "harness.hpp"
#include <cafraft/actors/batch.hpp>
#include <cafraft/actors/batcher.hpp>
#include <cafraft/actors/peer.hpp>
#include <cafraft/runtime/features.hpp>
#include <cafraft/runtime/logging.hpp>

namespace cafraft::test {
namespace {

class BatchTest : public ::testing::Test {
protected:
  test_config cfg;
  caf::actor_system sys{cfg};
  driver d{sys, 1, false};
  std::vector<caf::actor> to_stop; // an actor system waits for its actors when it goes

  void TearDown() override {
    for (auto& a : to_stop)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    d.run();
    // Requests a failed test left unanswered time out, so that the actor system can go.
    d.advance(std::chrono::seconds{11}, std::chrono::seconds{1});
  }

  caf::actor batcher(batcher_options opts = {}) {
    to_stop.push_back(spawn_batcher(sys, opts));
    return to_stop.back();
  }

  caf::actor scripted(std::shared_ptr<std::vector<int>> sizes);

  std::string wait_leader(cluster& c) {
    std::string leader;
    d.run_until([&] { return !(leader = agreed_leader(c, d)).empty(); }, 3000ms);
    return leader;
  }

  template <class Resp, class... Ts>
  std::shared_ptr<outcome<Resp>> ask(const caf::actor& to, Ts... xs) {
    return ask_actor<Resp>(sys, to, caf::make_message(std::move(xs)...), std::chrono::seconds{10});
  }

  template <class T> caf::expected<T> wait(const std::shared_ptr<outcome<T>>& o) {
    d.run_until([&] { return o->done; }, 2000ms);
    EXPECT_TRUE(o->done) << "no answer";
    return o->value;
  }
};

pb::BatchItem item(pb::PutRequest r) {
  pb::BatchItem i;
  *i.mutable_put() = std::move(r);
  return i;
}

pb::BatchItem item(pb::GetRequest r) {
  pb::BatchItem i;
  *i.mutable_get() = std::move(r);
  return i;
}

pb::BatchItem cas(const std::string& key, const std::string& expected, const std::string& value) {
  pb::BatchItem i;
  auto& c = *i.mutable_cas();
  c.set_key(key);
  c.set_expected(expected);
  c.set_value(value);
  return i;
}

pb::BatchItem del(const std::string& key) {
  pb::BatchItem i;
  i.mutable_del()->set_key(key);
  return i;
}

pb::KvResult kv_result(const pb::BatchResult& r) {
  pb::KvResult out;
  EXPECT_TRUE(out.ParseFromString(r.write().result()));
  return out;
}

TEST(BatchErrors, CafraftAndCafErrorsSurviveTheTripThroughABatchResult) {
  for (auto e : {make_not_leader("n2", "10.0.0.2:4000"), make_error(errc::unknown_leader),
                 make_error(errc::invalid_request, "empty key"), make_error(errc::overloaded),
                 caf::make_error(caf::sec::request_timeout),
                 caf::make_error(caf::sec::request_receiver_down)}) {
    pb::BatchError b;
    to_pb(e, b);
    pb::BatchError wire;
    ASSERT_TRUE(wire.ParseFromString(b.SerializeAsString()));
    auto back = from_pb(wire);
    EXPECT_EQ(back, e) << render(e);
    EXPECT_EQ(render(back), render(e));
    EXPECT_EQ(is_indefinite(back), is_indefinite(e)) << render(e);
  }
  std::string id, address;
  pb::BatchError b;
  to_pb(make_not_leader("n2", "10.0.0.2:4000"), b);
  ASSERT_TRUE(leader_hint(from_pb(b), id, address));
  EXPECT_EQ(id, "n2");
  EXPECT_EQ(address, "10.0.0.2:4000");
}

TEST_F(BatchTest, TheLeaderAnswersEveryItemInOrderAsIfItCameAlone) {
  cluster c{sys, 3, 1, nullptr};
  auto leader = wait_leader(c);
  ASSERT_FALSE(leader.empty());
  pb::BatchRequest b;
  *b.add_items() = item(put("a", "1"));
  *b.add_items() = item(put("b", "1"));
  *b.add_items() = cas("a", "1", "2");
  *b.add_items() = cas("b", "9", "3"); // expectation does not hold
  *b.add_items() = del("b");
  b.add_items();                       // no operation
  *b.add_items() = item(put("", "x")); // empty key
  auto r = wait(ask<pb::BatchResponse>(c.nodes.at(leader), b));
  ASSERT_TRUE(r) << render(r.error());
  ASSERT_EQ(r->results_size(), 7);
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(r->results(i).has_write()) << i;
  // Items are proposed in order: each write gets a later index than the one before it.
  for (int i = 1; i < 5; ++i)
    EXPECT_GT(r->results(i).write().index(), r->results(i - 1).write().index());
  EXPECT_FALSE(kv_result(r->results(2)).compare_failed());
  EXPECT_TRUE(kv_result(r->results(3)).compare_failed());
  EXPECT_EQ(kv_result(r->results(3)).previous(), "1");
  for (int i : {5, 6}) {
    ASSERT_TRUE(r->results(i).has_error()) << i;
    EXPECT_EQ(from_pb(r->results(i).error()).code(), static_cast<uint8_t>(errc::invalid_request));
  }
  // Reads in a batch are linearizable reads: they see every write answered before.
  pb::BatchRequest reads;
  *reads.add_items() = item(get("a"));
  *reads.add_items() = item(get("b"));
  auto g = wait(ask<pb::BatchResponse>(c.nodes.at(leader), reads));
  ASSERT_TRUE(g);
  ASSERT_EQ(g->results_size(), 2);
  EXPECT_TRUE(g->results(0).get().found());
  EXPECT_EQ(g->results(0).get().value(), "2");
  EXPECT_FALSE(g->results(1).get().found());
}

TEST_F(BatchTest, AFollowerAnswersEveryItemWithTheLeadersAddress) {
  cluster c{sys, 3, 1, nullptr};
  auto leader = wait_leader(c);
  ASSERT_FALSE(leader.empty());
  auto follower = leader == "n1" ? std::string{"n2"} : std::string{"n1"};
  pb::BatchRequest b;
  *b.add_items() = item(put("a", "1"));
  *b.add_items() = item(get("a"));
  auto r = wait(ask<pb::BatchResponse>(c.nodes.at(follower), b));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->results_size(), 2);
  for (auto& res : r->results()) {
    ASSERT_TRUE(res.has_error());
    std::string id, address;
    ASSERT_TRUE(leader_hint(from_pb(res.error()), id, address));
    EXPECT_EQ(id, leader);
    EXPECT_EQ(address, "sim/" + leader);
  }
}

TEST_F(BatchTest, AnEmptyBatchIsAnsweredAndAnOversizedOneRefused) {
  cluster c{sys, 1, 1, nullptr};
  auto leader = wait_leader(c);
  ASSERT_FALSE(leader.empty());
  auto before = statuses(c, d).at(leader).commit_index();
  auto empty = wait(ask<pb::BatchResponse>(c.nodes.at(leader), pb::BatchRequest{}));
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->results_size(), 0);
  pb::BatchRequest big;
  for (int i = 0; i <= max_batch_items; ++i)
    *big.add_items() = item(put("k", "v"));
  auto refused = wait(ask<pb::BatchResponse>(c.nodes.at(leader), big));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), static_cast<uint8_t>(errc::invalid_request));
  d.advance(100ms);
  EXPECT_EQ(statuses(c, d).at(leader).commit_index(), before) << "nothing of it was proposed";
}

// A scripted node for the batcher: it records each batch and answers when told to. Like a
// dialer (actors/peer.hpp) it takes a watcher, and tells it of a lost connection on request.
struct scripted_state {
  std::vector<int> sizes;                        // items of each batch received
  std::vector<caf::response_promise> unanswered; // in arrival order
  std::vector<pb::BatchRequest> batches;
  caf::actor watcher;
};

caf::behavior scripted_node(caf::stateful_actor<scripted_state>* self,
                            std::shared_ptr<std::vector<int>> sizes) {
  return {
      [=](pb::BatchRequest& b) {
        sizes->push_back(b.items_size());
        self->state.batches.push_back(std::move(b));
        self->state.unanswered.push_back(self->make_response_promise());
        return self->state.unanswered.back();
      },
      // Answers the oldest batch: a write answer per put (its index: the item's position
      // plus `base`), not_leader for every get; `drop` fewer results than items.
      [=](caf::atom_value, uint64_t base, int drop) {
        auto& st = self->state;
        if (st.unanswered.empty())
          return;
        pb::BatchResponse resp;
        auto& b = st.batches.front();
        for (int i = 0; i < b.items_size() - drop; ++i) {
          auto& res = *resp.add_results();
          if (b.items(i).has_put())
            res.mutable_write()->set_index(base + static_cast<uint64_t>(i));
          else
            to_pb(make_not_leader("n9", "10.0.0.9:1"), *res.mutable_error());
        }
        st.unanswered.front().deliver(std::move(resp));
        st.unanswered.erase(st.unanswered.begin());
        st.batches.erase(st.batches.begin());
      },
      [=](connection_watch_atom) {
        self->state.watcher = caf::actor_cast<caf::actor>(self->current_sender());
      },
      [=](caf::atom_value) { // "lose": as a dialer whose connection broke
        self->send(self->state.watcher, connection_lost_atom::value,
                   caf::actor_cast<caf::actor>(self));
      },
  };
}

caf::actor BatchTest::scripted(std::shared_ptr<std::vector<int>> sizes) {
  to_stop.push_back(sys.spawn(scripted_node, std::move(sizes)));
  return to_stop.back();
}

TEST_F(BatchTest, TheBatcherGathersWhatCameWhileABatchWasOut) {
  auto sizes = std::make_shared<std::vector<int>>();
  auto node = scripted(sizes);
  auto batcher = this->batcher(batch_options(1, std::chrono::seconds{5}));
  auto first = ask<pb::WriteResponse>(batcher, batch_atom::value, node, put("k0", "v"));
  d.run();
  std::vector<std::shared_ptr<outcome<pb::WriteResponse>>> rest;
  for (int i = 1; i <= 20; ++i)
    rest.push_back(ask<pb::WriteResponse>(batcher, batch_atom::value, node,
                                          put("k" + std::to_string(i), "v")));
  auto read = ask<pb::GetResponse>(batcher, batch_atom::value, node, get("k1"));
  d.run();
  ASSERT_EQ(*sizes, (std::vector<int>{1})) << "one batch out at a time; the rest waits";
  caf::anon_send(node, caf::atom("answer"), uint64_t{100}, 0);
  d.run();
  ASSERT_TRUE(first->done);
  ASSERT_TRUE(first->value);
  EXPECT_EQ(first->value->index(), 100u);
  ASSERT_EQ(*sizes, (std::vector<int>{1, 21})) << "what came meanwhile goes out as one batch";
  caf::anon_send(node, caf::atom("answer"), uint64_t{200}, 0);
  d.run();
  for (size_t i = 0; i < rest.size(); ++i) {
    ASSERT_TRUE(rest[i]->done && rest[i]->value) << i;
    EXPECT_EQ(rest[i]->value->index(), 200u + i) << "each caller gets its own item's answer";
  }
  ASSERT_TRUE(read->done);
  ASSERT_FALSE(read->value);
  std::string id, address;
  EXPECT_TRUE(leader_hint(read->value.error(), id, address));
  EXPECT_EQ(id, "n9");
}

TEST_F(BatchTest, TheBatcherFailsABatchThatGetsNoAnswerOrAWrongOneAndGoesOn) {
  auto sizes = std::make_shared<std::vector<int>>();
  auto node = scripted(sizes);
  auto batcher = this->batcher(batch_options(1, std::chrono::milliseconds{500}));
  // Input it does not understand is refused and changes nothing.
  auto odd = wait(ask<pb::WriteResponse>(batcher, std::string{"garbage"}));
  ASSERT_FALSE(odd);
  EXPECT_EQ(odd.error().code(), static_cast<uint8_t>(errc::invalid_request));
  caf::anon_send(batcher, caf::make_error(caf::sec::runtime_error));
  auto lost = ask<pb::WriteResponse>(batcher, batch_atom::value, node, put("a", "1"));
  d.run();
  auto next = ask<pb::WriteResponse>(batcher, batch_atom::value, node, put("b", "1"));
  d.run_until([&] { return lost->done; }, 1000ms);
  ASSERT_TRUE(lost->done);
  ASSERT_FALSE(lost->value);
  EXPECT_EQ(lost->value.error(), caf::sec::request_timeout);
  EXPECT_TRUE(is_indefinite(lost->value.error()));
  d.run();
  ASSERT_EQ(*sizes, (std::vector<int>{1, 1})) << "the timed-out batch no longer holds the next";
  // The scripted node still holds the lost batch first: its late answer goes nowhere, then the next
  // batch gets an answer that lacks a result.
  caf::anon_send(node, caf::atom("answer"), uint64_t{1}, 0);
  caf::anon_send(node, caf::atom("answer"), uint64_t{1}, 1);
  d.run();
  ASSERT_TRUE(next->done);
  ASSERT_FALSE(next->value);
  EXPECT_EQ(next->value.error().code(), static_cast<uint8_t>(errc::invalid_request));
}

// A broken connection fails what is under way at once, not at the timeout: the batch sent
// with connection_lost (it may have been applied), the requests not sent yet with unreachable
// (they were not). The next request starts afresh, and a late answer changes nothing.
TEST_F(BatchTest, ALostConnectionFailsTheBatchesUnderWayAtOnce) {
  auto sizes = std::make_shared<std::vector<int>>();
  auto node = scripted(sizes);
  auto batcher = this->batcher(batch_options(1, std::chrono::seconds{5}));
  auto sent = ask<pb::WriteResponse>(batcher, batch_atom::value, node, put("a", "1"));
  d.run();
  auto queued = ask<pb::WriteResponse>(batcher, batch_atom::value, node, put("b", "1"));
  d.run();
  ASSERT_EQ(*sizes, (std::vector<int>{1}));
  caf::anon_send(node, caf::atom("lose"));
  d.run(); // no time passes
  ASSERT_TRUE(sent->done && queued->done);
  ASSERT_FALSE(sent->value);
  EXPECT_EQ(sent->value.error().code(), static_cast<uint8_t>(errc::connection_lost));
  EXPECT_TRUE(is_indefinite(sent->value.error()));
  ASSERT_FALSE(queued->value);
  EXPECT_EQ(queued->value.error().code(), static_cast<uint8_t>(errc::unreachable));
  EXPECT_FALSE(is_indefinite(queued->value.error()));
  auto again = ask<pb::WriteResponse>(batcher, batch_atom::value, node, put("c", "1"));
  d.run();
  ASSERT_EQ(*sizes, (std::vector<int>{1, 1})) << "the next request goes out at once";
  caf::anon_send(node, caf::atom("answer"), uint64_t{7}, 0); // the lost batch's late answer
  caf::anon_send(node, caf::atom("answer"), uint64_t{8}, 0);
  d.run();
  ASSERT_TRUE(again->done && again->value);
  EXPECT_EQ(again->value->index(), 8u);
}

// The same through a dialer (actors/peer.hpp) whose node goes away: the dialer tells the
// batcher, which fails the batch at once; meanwhile the dialer answers unreachable.
TEST_F(BatchTest, ADialerWhoseNodeGoesTellsTheBatcherAtOnce) {
  auto sizes = std::make_shared<std::vector<int>>();
  auto node = sys.spawn(scripted_node, sizes);
  caf::actor dialer;
  auto owner = sys.spawn([&](caf::event_based_actor* self) -> caf::behavior {
    dialer = spawn_peer(self, "client", "n1", get_logger("test"));
    return {[](int) {}};
  });
  to_stop.push_back(owner);
  d.run(); // the owner starts, and its dialer with it
  ASSERT_TRUE(dialer);
  caf::anon_send(dialer, peer_handle_atom::value, node);
  auto batcher = this->batcher(batch_options(1, std::chrono::seconds{5}));
  auto sent = ask<pb::WriteResponse>(batcher, batch_atom::value, dialer, put("a", "1"));
  d.run();
  ASSERT_EQ(*sizes, (std::vector<int>{1}));
  caf::anon_send_exit(node, caf::exit_reason::kill);
  d.run(); // no time passes
  ASSERT_TRUE(sent->done);
  ASSERT_FALSE(sent->value);
  EXPECT_EQ(sent->value.error().code(), static_cast<uint8_t>(errc::connection_lost));
  auto next = wait(ask<pb::WriteResponse>(batcher, batch_atom::value, dialer, put("b", "1")));
  ASSERT_FALSE(next);
  EXPECT_EQ(next.error().code(), static_cast<uint8_t>(errc::unreachable));
}

TEST_F(BatchTest, ThroughTheBatcherToARealClusterWritesCommitAndFollowersRedirect) {
  cluster c{sys, 3, 1, nullptr};
  auto leader = wait_leader(c);
  ASSERT_FALSE(leader.empty());
  auto follower = leader == "n1" ? std::string{"n2"} : std::string{"n1"};
  auto batcher = this->batcher();
  std::vector<std::shared_ptr<outcome<pb::WriteResponse>>> writes;
  for (int i = 0; i < 50; ++i)
    writes.push_back(ask<pb::WriteResponse>(batcher, batch_atom::value, c.nodes.at(leader),
                                            put("k" + std::to_string(i), "v")));
  auto redirected =
      ask<pb::WriteResponse>(batcher, batch_atom::value, c.nodes.at(follower), put("x", "1"));
  d.run_until(
      [&] {
        for (auto& w : writes)
          if (!w->done)
            return false;
        return redirected->done;
      },
      2000ms);
  std::set<uint64_t> indexes;
  for (auto& w : writes) {
    ASSERT_TRUE(w->done && w->value);
    indexes.insert(w->value->index());
  }
  EXPECT_EQ(indexes.size(), 50u);
  ASSERT_TRUE(redirected->done);
  ASSERT_FALSE(redirected->value);
  std::string id, address;
  ASSERT_TRUE(leader_hint(redirected->value.error(), id, address));
  EXPECT_EQ(id, leader);
  auto r = wait(ask<pb::GetResponse>(batcher, batch_atom::value, c.nodes.at(leader), get("k49")));
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->found());
}

// With `resolve`, the batcher's writes go in its client session: a write whose leader crashes
// under it is sent again with its sequence number, to the next leader, and applies once. A
// chain of compare-and-swaps shows it: each expects the value the one before wrote, so a write
// applied twice would fail the next compare.
TEST_F(BatchTest, InItsSessionTheBatcherRetriesThroughALeadersCrashAndAWriteAppliesOnce) {
  auto net = std::make_shared<network>(4);
  bool hold_acks = false; // the leader hears no acknowledgement: it cannot answer
  std::string leader;
  net->script = [&](const std::string&, const std::string& to, caf::message& m) {
    return hold_acks && to == leader && m.match_elements<pb::AppendEntriesResponse>();
  };
  cluster c{sys, 3, 4, net, [](node_config& nc) { nc.feature_level = features::current; }};
  leader = wait_leader(c);
  ASSERT_FALSE(leader.empty());
  d.run_until([] { return false; }, 500ms); // the sessions' feature level is put in force
  batcher_options opts;
  opts.resolve = [&c](const std::string& id, const std::string&) {
    return c.nodes.count(id) ? c.nodes.at(id) : caf::actor{};
  };
  for (auto& [id, node] : c.nodes)
    opts.nodes.push_back(node);
  opts.timeout = std::chrono::milliseconds{500};
  auto batcher = this->batcher(opts);
  uint64_t duplicates = 0;
  for (int i = 1; i <= 12; ++i) {
    pb::CasRequest cas;
    cas.set_key("chain");
    cas.set_value(std::to_string(i));
    if (i == 1)
      cas.set_expect_absent(true);
    else
      cas.set_expected(std::to_string(i - 1));
    // Write 6 reaches the followers, but the leader never hears them and crashes: the write is
    // in a majority's logs, unanswered. The next leader commits it; the batcher's retry must
    // not apply it again.
    hold_acks = i == 6;
    auto w = ask<pb::WriteResponse>(batcher, batch_atom::value, c.nodes.at(leader), cas);
    if (i == 6) {
      d.run_until([] { return false; }, 50ms);
      c.stop(leader);
      hold_acks = false;
    }
    d.run_until([&] { return w->done; }, 5000ms);
    ASSERT_TRUE(w->done) << "cas " << i;
    ASSERT_TRUE(w->value) << "cas " << i << ": " << render(w->value.error());
    pb::KvResult res;
    ASSERT_TRUE(res.ParseFromString(w->value->result()));
    ASSERT_FALSE(res.compare_failed()) << "cas " << i << " found " << res.previous();
    duplicates += w->value->duplicate();
    if (i == 6)
      leader = wait_leader(c);
  }
  uint64_t retries = 0;
  bool told = false;
  sys.spawn([&, batcher](caf::event_based_actor* self) {
    self->request(batcher, std::chrono::seconds{1}, status_atom::value)
        .then([&](uint64_t, uint64_t r, uint64_t) {
          retries = r;
          told = true;
        });
  });
  d.run_until([&] { return told; }, 100ms);
  EXPECT_GT(retries, 0u) << "the crash left no write to send again: the test tested nothing";
  EXPECT_GT(duplicates, 0u) << "write 6 was not answered from the session table";
  std::printf("[batcher] %llu writes sent again, %llu answered from the session table\n",
              static_cast<unsigned long long>(retries),
              static_cast<unsigned long long>(duplicates));
}

} // namespace
} // namespace cafraft::test
