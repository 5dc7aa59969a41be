// Unit tests of the built-in key-value store (runtime/state_machine.hpp) and of node_config
// validation (runtime/config.hpp). No CAF.
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include <cafraft/messages/raft.pb.h>
#include <cafraft/runtime/config.hpp>
#include <cafraft/runtime/state_machine.hpp>
#include <cafraft/runtime/storage.hpp>

namespace {

namespace pb = cafraft::pb;

std::vector<cafraft::member> three_voters() {
  return {{"n1", "a1"}, {"n2", "a2"}, {"n3", "a3"}};
}

// ---------------------------------------------------------------------------------------------
// kv_store
// ---------------------------------------------------------------------------------------------

std::string put_cmd(const std::string& key, const std::string& value) {
  pb::KvCommand cmd;
  cmd.mutable_put()->set_key(key);
  cmd.mutable_put()->set_value(value);
  return cmd.SerializeAsString();
}

std::string del_cmd(const std::string& key) {
  pb::KvCommand cmd;
  cmd.mutable_del()->set_key(key);
  return cmd.SerializeAsString();
}

pb::GetResponse kv_get(const cafraft::kv_store& kv, const std::string& key) {
  pb::KvQuery q;
  q.set_key(key);
  pb::GetResponse resp;
  EXPECT_TRUE(resp.ParseFromString(kv.query(q.SerializeAsString())));
  return resp;
}

pb::KvResult result_of(const std::string& bytes) {
  pb::KvResult res;
  EXPECT_TRUE(res.ParseFromString(bytes));
  return res;
}

const std::string binary_value = std::string("v\0\xff\x01", 4);

TEST(KvStoreMachine, PutThenQueryFindsValue) {
  cafraft::kv_store kv;
  auto res = result_of(kv.apply(1, put_cmd("k", binary_value)));
  EXPECT_FALSE(res.existed());
  auto got = kv_get(kv, "k");
  EXPECT_TRUE(got.found());
  EXPECT_EQ(got.value(), binary_value);
  EXPECT_FALSE(kv_get(kv, "other").found());
}

std::string cas_cmd(const std::string& key, const std::string& expected, const std::string& value,
                    bool expect_absent = false) {
  pb::KvCommand cmd;
  auto* c = cmd.mutable_cas();
  c->set_key(key);
  c->set_expected(expected);
  c->set_value(value);
  c->set_expect_absent(expect_absent);
  return cmd.SerializeAsString();
}

TEST(KvStoreMachine, CompareAndSwapSwapsOnlyWhenTheExpectationHolds) {
  cafraft::kv_store kv;
  auto absent = result_of(kv.apply(1, cas_cmd("k", "", "one", true)));
  EXPECT_FALSE(absent.compare_failed());
  EXPECT_EQ(kv_get(kv, "k").value(), "one");
  auto again = result_of(kv.apply(2, cas_cmd("k", "", "two", true))); // exists now
  EXPECT_TRUE(again.compare_failed());
  EXPECT_EQ(again.previous(), "one");
  auto wrong = result_of(kv.apply(3, cas_cmd("k", "zero", "two")));
  EXPECT_TRUE(wrong.compare_failed());
  EXPECT_EQ(wrong.previous(), "one");
  EXPECT_EQ(kv_get(kv, "k").value(), "one");
  auto right = result_of(kv.apply(4, cas_cmd("k", "one", "two")));
  EXPECT_FALSE(right.compare_failed());
  EXPECT_EQ(right.previous(), "one");
  EXPECT_EQ(kv_get(kv, "k").value(), "two");
  auto missing = result_of(kv.apply(5, cas_cmd("nope", "x", "y")));
  EXPECT_TRUE(missing.compare_failed());
  EXPECT_FALSE(missing.existed());
  EXPECT_FALSE(kv_get(kv, "nope").found());
}

TEST(KvStoreMachine, OverwriteReturnsPreviousValue) {
  cafraft::kv_store kv;
  kv.apply(1, put_cmd("k", "one"));
  auto res = result_of(kv.apply(2, put_cmd("k", "two")));
  EXPECT_TRUE(res.existed());
  EXPECT_EQ(res.previous(), "one");
  EXPECT_EQ(kv_get(kv, "k").value(), "two");
}

TEST(KvStoreMachine, DeleteRemovesKeyAndReturnsPreviousValue) {
  cafraft::kv_store kv;
  kv.apply(1, put_cmd("k", "one"));
  auto res = result_of(kv.apply(2, del_cmd("k")));
  EXPECT_TRUE(res.existed());
  EXPECT_EQ(res.previous(), "one");
  EXPECT_FALSE(kv_get(kv, "k").found());
  auto again = result_of(kv.apply(3, del_cmd("k")));
  EXPECT_FALSE(again.existed());
}

TEST(KvStoreMachine, MalformedCommandDoesNotThrowOrChangeState) {
  cafraft::kv_store kv;
  kv.apply(1, put_cmd("k", "one"));
  std::string out;
  EXPECT_NO_THROW(out = kv.apply(2, std::string("\xff\xff\xff\xff\x0f", 5)));
  EXPECT_NO_THROW(kv.apply(3, std::string("\x0a\x7f", 2))); // length beyond the end
  EXPECT_NO_THROW(kv.apply(4, std::string()));              // no operation at all
  EXPECT_EQ(kv.data().size(), 1u);
  EXPECT_EQ(kv_get(kv, "k").value(), "one");
  EXPECT_FALSE(kv_get(kv, "").found());
}

// Regression: keys were proto3 `string` fields; a committed put with a non-UTF-8 key was
// acknowledged and then dropped by kv_store::apply. Keys are `bytes` now.
TEST(KvStoreMachine, PutWithNonUtf8KeyIsStored) {
  cafraft::kv_store kv;
  const std::string key("key\xff\xfe", 5);
  kv.apply(1, put_cmd(key, "v"));
  EXPECT_EQ(kv.data().count(key), 1u);
}

TEST(KvStoreMachine, MalformedQueryFindsNothing) {
  cafraft::kv_store kv;
  kv.apply(1, put_cmd("k", "one"));
  pb::GetResponse resp;
  std::string out;
  EXPECT_NO_THROW(out = kv.query(std::string("\xff\xff", 2)));
  ASSERT_TRUE(resp.ParseFromString(out));
  EXPECT_FALSE(resp.found());
}

TEST(KvStoreMachine, SnapshotRestoreRoundTrip) {
  cafraft::kv_store kv;
  kv.apply(1, put_cmd("a", "1"));
  kv.apply(2, put_cmd(std::string("b\0b", 3), binary_value));
  kv.apply(3, put_cmd("", "empty key"));
  kv.apply(4, put_cmd("big", std::string(100000, 'x')));
  auto snap = kv.snapshot();

  cafraft::kv_store other;
  other.apply(1, put_cmd("stale", "gone after restore"));
  ASSERT_TRUE(other.restore(snap));
  EXPECT_EQ(other.data(), kv.data());
  EXPECT_EQ(kv_get(other, std::string("b\0b", 3)).value(), binary_value);
  EXPECT_FALSE(kv_get(other, "stale").found());
}

// A snapshot is the state when it was prepared, although writes change the store while the
// writer goes through it; and the store keeps those writes.
TEST(KvStoreMachine, ASnapshotBeingWrittenIsUntouchedByLaterWrites) {
  cafraft::kv_store kv;
  for (int i = 0; i < 1000; ++i)
    kv.apply(1, put_cmd("k" + std::to_string(i), "old"));
  auto before = kv.data();
  auto writer = kv.prepare_snapshot();
  struct sink : cafraft::snapshot_sink {
    void write(std::string_view b) override { out.append(b); }
    std::string out;
  } out;
  size_t pieces = 0;
  for (int i = 0; i < 1000; ++i) {
    // Half the writer's pieces are written before the changes, half after.
    if (i % 2 == 0 && writer->write_next(out))
      ++pieces;
    kv.apply(2, put_cmd("k" + std::to_string(i), "new"));
    kv.apply(3, del_cmd("k" + std::to_string((i + 500) % 1000)));
    kv.apply(4, put_cmd("added" + std::to_string(i), "x"));
  }
  while (writer->write_next(out))
    ++pieces;
  EXPECT_GT(pieces, 100u) << "the state is written a shard at a time";
  cafraft::kv_store restored;
  ASSERT_TRUE(restored.restore(out.out));
  EXPECT_EQ(restored.data(), before);
  EXPECT_EQ(kv.size(), 1500u); // k0..k499 deleted last, k500..k999 written last, 1000 added
  EXPECT_EQ(kv_get(kv, "added7").value(), "x");
  EXPECT_FALSE(kv_get(kv, "k7").found());
}

TEST(KvStoreMachine, EmptySnapshotRestoresEmptyStore) {
  cafraft::kv_store empty;
  cafraft::kv_store kv;
  kv.apply(1, put_cmd("a", "1"));
  ASSERT_TRUE(kv.restore(empty.snapshot()));
  EXPECT_TRUE(kv.data().empty());
}

TEST(KvStoreMachine, RestoreOfTruncatedOrGarbageSnapshotFailsAndKeepsState) {
  cafraft::kv_store source;
  source.apply(1, put_cmd("a", "1"));
  source.apply(2, put_cmd("b", "2"));
  auto snap = source.snapshot();

  cafraft::kv_store kv;
  kv.apply(1, put_cmd("mine", "kept"));
  auto before = kv.data();
  std::vector<std::string> bad = {
      snap.substr(0, snap.size() - 1),   // last record cut short
      snap.substr(0, 2),                 // inside the first length prefix
      snap + std::string("\x01\x00", 2), // trailing partial length prefix
      std::string("\xff\xff\xff\xff garbage", 12),
      // The length prefix is in host byte order (little-endian here).
      std::string("\x03\x00\x00\x00\xff\xff\xff", 7), // length fits, payload is no protobuf
      std::string("\x02\x00\x00\x00\x12\x00", 6),     // a valid KvCommand, but a delete
  };
  for (auto& b : bad) {
    EXPECT_FALSE(kv.restore(b)) << "snapshot of " << b.size() << " bytes";
    EXPECT_EQ(kv.data(), before);
  }
}

// ---------------------------------------------------------------------------------------------
// validate(node_config)
// ---------------------------------------------------------------------------------------------

// The error text names what is wrong (and is not empty, which would mean "valid").
testing::AssertionResult mentions(const std::string& error, const std::string& word) {
  if (error.find(word) != std::string::npos)
    return testing::AssertionSuccess();
  return testing::AssertionFailure()
         << "error \"" << error << "\" does not mention \"" << word << "\"";
}

cafraft::node_config valid_config() {
  cafraft::node_config cfg;
  cfg.id = "n1";
  cfg.members = three_voters();
  cfg.data_dir = "/var/lib/cafraft/n1";
  return cfg;
}

TEST(NodeConfigValidate, NeedsExactlyOneStorage) {
  auto cfg = valid_config();
  cfg.data_dir.clear();
  EXPECT_TRUE(mentions(cafraft::validate(cfg), "data_dir"));
  cfg.storage = std::make_shared<cafraft::memory_storage>();
  EXPECT_EQ(cafraft::validate(cfg), "");
  cfg.data_dir = "/tmp/x";
  EXPECT_TRUE(mentions(cafraft::validate(cfg), "not both"));
}

TEST(NodeConfigValidate, DefaultsWithThreeMembersAreValid) {
  EXPECT_EQ(cafraft::validate(valid_config()), "");
  auto single = valid_config();
  single.members = {{"n1", "a1"}};
  EXPECT_EQ(cafraft::validate(single), "");
}

TEST(NodeConfigValidate, RejectsEmptyIdAndEmptyMembers) {
  auto cfg = valid_config();
  cfg.id.clear();
  EXPECT_TRUE(mentions(cafraft::validate(cfg), "id"));
  cfg = valid_config();
  cfg.members.clear();
  EXPECT_TRUE(mentions(cafraft::validate(cfg), "members"));
  cfg = valid_config();
  cfg.members[1].id.clear();
  EXPECT_TRUE(mentions(cafraft::validate(cfg), "empty id"));
}

TEST(NodeConfigValidate, RejectsDuplicateMemberIds) {
  auto cfg = valid_config();
  cfg.members.push_back({"n2", "elsewhere"});
  EXPECT_TRUE(mentions(cafraft::validate(cfg), "n2"));
}

TEST(NodeConfigValidate, RejectsNodeThatIsNotAMember) {
  auto cfg = valid_config();
  cfg.id = "n4";
  EXPECT_TRUE(mentions(cafraft::validate(cfg), "n4"));
}

TEST(NodeConfigValidate, RejectsBadElectionTimeouts) {
  using std::chrono::milliseconds;
  auto cfg = valid_config();
  cfg.election_timeout_min = milliseconds{0};
  EXPECT_NE(cafraft::validate(cfg), "");
  cfg = valid_config();
  cfg.election_timeout_min = milliseconds{300};
  cfg.election_timeout_max = milliseconds{200};
  EXPECT_NE(cafraft::validate(cfg), "");
  cfg = valid_config();
  cfg.election_timeout_min = milliseconds{200};
  cfg.election_timeout_max = milliseconds{200}; // min == max is allowed
  EXPECT_EQ(cafraft::validate(cfg), "");
}

TEST(NodeConfigValidate, RejectsHeartbeatNotBelowElectionTimeout) {
  // §5.6: broadcastTime << electionTimeout, or followers start elections under a live leader.
  using std::chrono::milliseconds;
  auto cfg = valid_config();
  cfg.heartbeat_interval = cfg.election_timeout_min;
  EXPECT_TRUE(mentions(cafraft::validate(cfg), "heartbeat"));
  cfg.heartbeat_interval = cfg.election_timeout_min + milliseconds{1};
  EXPECT_TRUE(mentions(cafraft::validate(cfg), "heartbeat"));
  cfg.heartbeat_interval = milliseconds{0};
  EXPECT_TRUE(mentions(cafraft::validate(cfg), "heartbeat"));
  cfg.heartbeat_interval = cfg.election_timeout_min - milliseconds{1};
  EXPECT_EQ(cafraft::validate(cfg), "");
}

TEST(NodeConfigValidate, RejectsZeroBatchOrWindowSizes) {
  auto cfg = valid_config();
  cfg.max_batch_entries = 0;
  EXPECT_NE(cafraft::validate(cfg), "");
  cfg = valid_config();
  cfg.max_inflight = 0;
  EXPECT_NE(cafraft::validate(cfg), "");
  cfg = valid_config();
  cfg.max_batch_bytes = 0;
  EXPECT_NE(cafraft::validate(cfg), "");
}

} // namespace
