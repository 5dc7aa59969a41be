// cafraft's wire protocol without sockets (runtime/wire.hpp, actors/wire_codec.hpp,
// docs/protocol.md): framing, the handshake's rules and refusals, and every message a node or
// client sends, through bytes and back.
#include <set>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/make_message.hpp>
#include <caf/message.hpp>
#include <gtest/gtest.h>

#include <cafraft/actors/wire_codec.hpp>
#include <cafraft/messages/api.hpp>
#include <cafraft/runtime/wire.hpp>

namespace {

namespace pb = cafraft::pb;
namespace wire = cafraft::wire;
using wire::fault;

std::vector<char> bytes_of(const pb::Frame& f) {
  std::vector<char> out;
  wire::append_frame(f, out);
  return out;
}

pb::Frame hello(const std::string& node, const std::string& cluster = "c1") {
  pb::Frame f;
  auto* h = f.mutable_hello();
  h->set_magic(wire::magic);
  h->set_min_version(wire::min_version);
  h->set_max_version(wire::max_version);
  h->set_cluster_id(cluster);
  h->set_node_id(node);
  return f;
}

wire::session acceptor(const std::string& node = "n1", const std::string& cluster = "c1") {
  return wire::session{true, wire::identity{cluster, node, ""}, wire::limits{}};
}

struct fed {
  fault result;
  std::vector<pb::Frame> frames;
  std::vector<char> out;
};

fed feed(wire::session& s, const std::vector<char>& bytes) {
  fed r;
  r.result = s.feed(bytes.data(), bytes.size(), r.frames, r.out);
  return r;
}

// The frames in `bytes` (what a session wrote back).
std::vector<pb::Frame> frames_in(const std::vector<char>& bytes) {
  wire::frame_decoder d{1 << 20};
  d.feed(bytes.data(), bytes.size());
  std::vector<pb::Frame> out;
  pb::Frame f;
  fault e;
  std::string why;
  while (d.next(f, e, why))
    out.push_back(f);
  EXPECT_EQ(e, fault::none) << why;
  return out;
}

pb::Frame ping() {
  pb::Frame f;
  f.mutable_ping();
  return f;
}

TEST(FrameDecoder, CutsFramesThatArriveWholeTogetherOrAByteAtATime) {
  std::vector<char> stream;
  for (int i = 0; i < 3; ++i) {
    pb::Frame f;
    f.mutable_put()->set_key("k" + std::to_string(i));
    f.mutable_put()->set_value(std::string(1000 * i, 'v'));
    f.set_id(static_cast<uint64_t>(i + 1));
    wire::append_frame(f, stream);
  }
  for (size_t step : {stream.size(), size_t{1}, size_t{7}}) {
    wire::frame_decoder d{1 << 20};
    std::vector<pb::Frame> got;
    for (size_t at = 0; at < stream.size(); at += step) {
      d.feed(stream.data() + at, std::min(step, stream.size() - at));
      pb::Frame f;
      fault e;
      std::string why;
      while (d.next(f, e, why))
        got.push_back(f);
      ASSERT_EQ(e, fault::none) << why;
    }
    ASSERT_EQ(got.size(), 3u) << "step " << step;
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(got[i].id(), i + 1);
      EXPECT_EQ(got[i].put().key(), "k" + std::to_string(i));
      EXPECT_EQ(got[i].put().value().size(), 1000 * i);
    }
    EXPECT_EQ(d.buffered(), 0u);
  }
}

TEST(FrameDecoder, RefusesALengthAboveTheLimitBeforeItsBytesArrive) {
  wire::frame_decoder d{1000};
  const char header[] = {0x00, 0x00, 0x03, static_cast<char>(0xe9)}; // 1001
  d.feed(header, sizeof(header));
  pb::Frame f;
  fault e;
  std::string why;
  EXPECT_FALSE(d.next(f, e, why));
  EXPECT_EQ(e, fault::frame_too_long);
  EXPECT_NE(why.find("1001"), std::string::npos) << why;
}

TEST(FrameDecoder, RefusesBytesThatAreNotAFrame) {
  // Field 3 (hello) says 5 bytes follow, and the frame ends.
  const char bad[] = {0x00, 0x00, 0x00, 0x02, 0x1a, 0x05};
  wire::frame_decoder d{1000};
  d.feed(bad, sizeof(bad));
  pb::Frame f;
  fault e;
  std::string why;
  EXPECT_FALSE(d.next(f, e, why));
  EXPECT_EQ(e, fault::undecodable);
}

TEST(WireHandshake, AHelloIsWelcomedWithTheVersionAndTheNodesIdentity) {
  auto s = acceptor();
  auto r = feed(s, bytes_of(hello("n2")));
  ASSERT_EQ(r.result, fault::none) << s.why();
  ASSERT_TRUE(s.established());
  EXPECT_EQ(s.peer_node_id(), "n2");
  auto answers = frames_in(r.out);
  ASSERT_EQ(answers.size(), 1u);
  ASSERT_TRUE(answers[0].has_welcome());
  EXPECT_EQ(answers[0].welcome().version(), wire::max_version);
  EXPECT_EQ(answers[0].welcome().node_id(), "n1");
  EXPECT_EQ(answers[0].welcome().cluster_id(), "c1");
  // Frames after it are handed on, in order.
  std::vector<char> more = bytes_of(ping());
  pb::Frame put;
  put.set_id(9);
  put.mutable_put()->set_key("k");
  wire::append_frame(put, more);
  auto r2 = feed(s, more);
  ASSERT_EQ(r2.result, fault::none);
  ASSERT_EQ(r2.frames.size(), 2u);
  EXPECT_TRUE(r2.frames[0].has_ping());
  EXPECT_EQ(r2.frames[1].id(), 9u);
}

TEST(WireHandshake, AnythingButAHelloFirstClosesTheConnection) {
  auto s = acceptor();
  auto r = feed(s, bytes_of(ping()));
  EXPECT_EQ(r.result, fault::out_of_order);
  EXPECT_FALSE(s.established());
  EXPECT_TRUE(r.frames.empty());
  // Nothing more is read after a fault.
  EXPECT_NE(feed(s, bytes_of(hello("n2"))).result, fault::none);
}

TEST(WireHandshake, ASecondHelloClosesTheConnection) {
  auto s = acceptor();
  ASSERT_EQ(feed(s, bytes_of(hello("n2"))).result, fault::none);
  EXPECT_EQ(feed(s, bytes_of(hello("n3"))).result, fault::out_of_order);
}

TEST(WireHandshake, OtherMagicVersionsAndClustersAreRefusedWithAReasonThatNamesBoth) {
  {
    auto s = acceptor();
    auto h = hello("n2");
    h.mutable_hello()->set_magic("http");
    EXPECT_EQ(feed(s, bytes_of(h)).result, fault::refused);
  }
  {
    auto s = acceptor();
    auto h = hello("n2");
    h.mutable_hello()->set_min_version(wire::max_version + 1);
    h.mutable_hello()->set_max_version(wire::max_version + 3);
    auto r = feed(s, bytes_of(h));
    EXPECT_EQ(r.result, fault::refused);
    auto answers = frames_in(r.out);
    ASSERT_EQ(answers.size(), 1u);
    ASSERT_TRUE(answers[0].has_error()); // the other side learns why before the close
    EXPECT_NE(answers[0].error().detail().find(std::to_string(wire::max_version + 3)),
              std::string::npos);
  }
  {
    auto s = acceptor("n1", "prod");
    auto r = feed(s, bytes_of(hello("n2", "staging")));
    EXPECT_EQ(r.result, fault::refused);
    EXPECT_NE(s.why().find("prod"), std::string::npos) << s.why();
    EXPECT_NE(s.why().find("staging"), std::string::npos) << s.why();
  }
  {
    // A client that does not name the cluster is let in; so is a node of a cluster without id.
    auto s = acceptor("n1", "prod");
    EXPECT_EQ(feed(s, bytes_of(hello("", ""))).result, fault::none);
    auto t = acceptor("n1", "");
    EXPECT_EQ(feed(t, bytes_of(hello("n2", "prod"))).result, fault::none);
  }
}

TEST(WireHandshake, WithTlsANodeMustBeNamedByItsCertificate) {
  {
    auto s = acceptor();
    s.set_certificate_names({"client"});
    auto r = feed(s, bytes_of(hello("n2")));
    EXPECT_EQ(r.result, fault::refused);
    EXPECT_NE(s.why().find("certificate"), std::string::npos) << s.why();
  }
  {
    auto s = acceptor();
    s.set_certificate_names({"n2.example", "n2"});
    EXPECT_EQ(feed(s, bytes_of(hello("n2"))).result, fault::none);
  }
  {
    // A client claims no node id, so any certificate of the CA will do.
    auto s = acceptor();
    s.set_certificate_names({"ctl"});
    EXPECT_EQ(feed(s, bytes_of(hello(""))).result, fault::none);
    EXPECT_EQ(s.peer_node_id(), "");
  }
}

// With a client CA apart (--tls-client-ca), its certificates are clients only: one that names
// n2 still cannot be n2, on either side of the handshake; as a client it gets in.
TEST(WireHandshake, ACertificateOfTheClientCaIsNeverANode) {
  {
    auto s = acceptor();
    s.set_certificate_names({"n2"}, false);
    EXPECT_EQ(feed(s, bytes_of(hello("n2"))).result, fault::refused);
    EXPECT_NE(s.why().find("client certificate"), std::string::npos) << s.why();
  }
  {
    auto s = acceptor();
    s.set_certificate_names({"ops"}, false);
    EXPECT_EQ(feed(s, bytes_of(hello(""))).result, fault::none);
  }
}

// A member speaks only in its own name: a Raft message whose sender is another node than the
// one the handshake named is not taken (no member may send AppendEntries as the leader, or
// vote as another voter); a client takes none.
TEST(WireHandshake, RaftMessagesAreTakenOnlyInTheNameOfThePeer) {
  auto s = acceptor();
  ASSERT_EQ(feed(s, bytes_of(hello("n2"))).result, fault::none);
  pb::Frame own, other;
  own.mutable_append_entries()->set_leader_id("n2");
  other.mutable_append_entries()->set_leader_id("n1");
  EXPECT_TRUE(s.takes_raft(own));
  EXPECT_FALSE(s.takes_raft(other));
  pb::Frame vote;
  vote.mutable_request_vote_response()->set_voter_id("n3");
  EXPECT_FALSE(s.takes_raft(vote));
  vote.mutable_request_vote_response()->set_voter_id("n2");
  EXPECT_TRUE(s.takes_raft(vote));
  pb::Frame rv, aer, is, isr, tn;
  rv.mutable_request_vote()->set_candidate_id("n1");
  aer.mutable_append_entries_response()->set_follower_id("n1");
  is.mutable_install_snapshot()->set_leader_id("n1");
  isr.mutable_install_snapshot_response()->set_follower_id("n1");
  tn.mutable_timeout_now()->set_leader_id("n1");
  for (auto* f : {&rv, &aer, &is, &isr, &tn}) {
    EXPECT_EQ(wire::raft_sender(*f), "n1");
    EXPECT_FALSE(s.takes_raft(*f)) << f->body_case();
  }
  auto c = acceptor();
  ASSERT_EQ(feed(c, bytes_of(hello(""))).result, fault::none); // a client
  EXPECT_FALSE(c.takes_raft(own));
}

// Any certificate of the cluster's CA can name itself in the handshake ("client", say): its
// Raft messages are taken only once the local node knows that id as a member.
TEST(WireHandshake, RaftMessagesAreTakenOnlyFromAKnownMember) {
  std::set<std::string> members{"n1", "n2", "n3"};
  auto check = [&](const std::string& id) { return members.count(id) > 0; };
  auto member = acceptor();
  member.set_member_check(check);
  ASSERT_EQ(feed(member, bytes_of(hello("n2"))).result, fault::none);
  EXPECT_TRUE(member.peer_is_member());
  auto stranger = acceptor();
  stranger.set_member_check(check);
  ASSERT_EQ(feed(stranger, bytes_of(hello("client"))).result, fault::none);
  EXPECT_FALSE(stranger.peer_is_member()) << "a node no configuration names";
  members.insert("client"); // the node learns of it (a configuration that adds it)
  EXPECT_TRUE(stranger.peer_is_member());
  auto client = acceptor();
  client.set_member_check(check);
  ASSERT_EQ(feed(client, bytes_of(hello(""))).result, fault::none);
  EXPECT_FALSE(client.peer_is_member()) << "a client is no member";
  auto unchecked = acceptor(); // no node behind it to ask (a client's own connection)
  ASSERT_EQ(feed(unchecked, bytes_of(hello("n7"))).result, fault::none);
  EXPECT_TRUE(unchecked.peer_is_member());
}

TEST(WireHandshake, ABigFrameBeforeTheHandshakeIsRefused) {
  auto s = acceptor();
  auto h = hello("n2");
  h.mutable_hello()->set_node_id(std::string(wire::limits{}.max_handshake_bytes, 'x'));
  EXPECT_EQ(feed(s, bytes_of(h)).result, fault::frame_too_long);
}

TEST(WireHandshake, AFrameOfATypeThisVersionDoesNotKnowClosesTheConnection) {
  auto s = acceptor();
  ASSERT_EQ(feed(s, bytes_of(hello("n2"))).result, fault::none);
  // Field 999, a varint: a body a later version might send.
  std::string body = {static_cast<char>(0xb8), 0x3e, 0x01};
  std::vector<char> frame = {0, 0, 0, static_cast<char>(body.size())};
  frame.insert(frame.end(), body.begin(), body.end());
  EXPECT_EQ(feed(s, frame).result, fault::unknown_type);
}

TEST(WireHandshake, TheConnectingSideChecksWhoAnswered) {
  auto welcome = [](const std::string& node, const std::string& cluster) {
    pb::Frame f;
    f.mutable_welcome()->set_version(wire::max_version);
    f.mutable_welcome()->set_node_id(node);
    f.mutable_welcome()->set_cluster_id(cluster);
    return f;
  };
  {
    wire::session s{false, wire::identity{"c1", "n1", "n2"}, wire::limits{}};
    EXPECT_EQ(s.hello().hello().node_id(), "n1");
    EXPECT_EQ(feed(s, bytes_of(welcome("n2", "c1"))).result, fault::none);
    EXPECT_EQ(s.peer_node_id(), "n2");
  }
  {
    wire::session s{false, wire::identity{"c1", "n1", "n2"}, wire::limits{}};
    EXPECT_EQ(feed(s, bytes_of(welcome("n3", "c1"))).result, fault::refused);
    EXPECT_NE(s.why().find("n3"), std::string::npos) << s.why();
  }
  {
    wire::session s{false, wire::identity{"c1", "n1", "n2"}, wire::limits{}};
    EXPECT_EQ(feed(s, bytes_of(welcome("n2", "c2"))).result, fault::refused);
  }
  {
    wire::session s{false, wire::identity{"c1", "n1", "n2"}, wire::limits{}};
    s.set_certificate_names({"n3"});
    EXPECT_EQ(feed(s, bytes_of(welcome("n2", "c1"))).result, fault::refused);
  }
  {
    wire::session s{false, wire::identity{"", "", ""}, wire::limits{}};
    pb::Frame refusal;
    refusal.mutable_error()->set_detail("this is cluster c1, not cluster c2");
    EXPECT_EQ(feed(s, bytes_of(refusal)).result, fault::refused);
    EXPECT_NE(s.why().find("cluster c1"), std::string::npos) << s.why();
  }
}

// Every message the wire carries, through bytes and back.
caf::message through_wire(const caf::message& m) {
  pb::Frame f;
  auto copy = m;
  EXPECT_TRUE(cafraft::to_frame(copy, f)) << caf::to_string(m);
  auto frames = frames_in(bytes_of(f));
  EXPECT_EQ(frames.size(), 1u);
  return frames.empty() ? caf::message{} : cafraft::from_frame(frames[0]);
}

template <class T> void expect_round_trip(const T& x) {
  auto back = through_wire(caf::make_message(x));
  ASSERT_TRUE(back.template match_elements<T>()) << T::descriptor()->full_name();
  EXPECT_EQ(back.template get_as<T>(0).SerializeAsString(), x.SerializeAsString())
      << T::descriptor()->full_name();
}

TEST(WireCodec, EveryMessageOfTheApiCrossesTheWireUnchanged) {
  pb::AppendEntries ae;
  ae.set_term(3);
  ae.set_leader_id("n1");
  auto* e = ae.add_entries();
  e->set_index(4);
  e->set_data(std::string("\0\xff", 2));
  expect_round_trip(ae);
  pb::AppendEntriesResponse aer;
  aer.set_term(3);
  aer.set_success(true);
  expect_round_trip(aer);
  pb::RequestVote rv;
  rv.set_term(5);
  expect_round_trip(rv);
  expect_round_trip(pb::RequestVoteResponse{});
  pb::InstallSnapshot is;
  is.set_data(std::string(3000, 's'));
  expect_round_trip(is);
  expect_round_trip(pb::InstallSnapshotResponse{});
  expect_round_trip(pb::TimeoutNow{});
  pb::PutRequest put;
  put.set_key(std::string("k\0", 2));
  put.set_value("v");
  expect_round_trip(put);
  expect_round_trip(pb::DeleteRequest{});
  expect_round_trip(pb::CasRequest{});
  pb::GetRequest get;
  get.set_stale(true);
  expect_round_trip(get);
  expect_round_trip(pb::ProposeRequest{});
  pb::QueryRequest query;
  query.set_query(std::string("q\0", 2));
  expect_round_trip(query);
  expect_round_trip(pb::SnapshotNowRequest{});
  pb::SnapshotReadRequest read;
  read.set_offset(7);
  expect_round_trip(read);
  pb::SnapshotChunk chunk;
  chunk.set_data("abc");
  expect_round_trip(chunk);
  pb::SnapshotMeta sm;
  sm.set_index(9);
  expect_round_trip(sm);
  pb::QueryResponse answer;
  answer.set_applied_index(3);
  expect_round_trip(answer);
  pb::BatchRequest batch;
  *batch.add_items()->mutable_put() = put;
  expect_round_trip(batch);
  pb::WriteResponse wr;
  wr.set_index(10);
  expect_round_trip(wr);
  expect_round_trip(pb::GetResponse{});
  expect_round_trip(pb::BatchResponse{});
  pb::NodeStatus st;
  st.set_id("n1");
  expect_round_trip(st);
  pb::JoinRequest join;
  join.set_id("n4");
  expect_round_trip(join);
  expect_round_trip(pb::LeaveRequest{});
  expect_round_trip(pb::MembershipResponse{});
  pb::LeaderInfo li;
  li.set_id("n2");
  expect_round_trip(li);
  expect_round_trip(pb::TransferLeadershipRequest{});
  pb::LeadershipEvent ev;
  ev.set_kind(pb::LeadershipEvent::BECAME_LEADER);
  expect_round_trip(ev);
  expect_round_trip(pb::ActorDirectory{});
  expect_round_trip(pb::InspectRequest{});
  expect_round_trip(pb::Inspection{});
  expect_round_trip(pb::LogLines{});
  pb::GroupList groups;
  groups.add_groups()->set_group(17);
  expect_round_trip(groups);
  pb::CreateGroupRequest create;
  create.set_group(17);
  expect_round_trip(create);
  pb::RemoveGroupRequest remove;
  remove.set_group(17);
  expect_round_trip(remove);
}

TEST(WireCodec, AtomRequestsAndPlainAnswersHaveMessagesOfTheirOwn) {
  using namespace cafraft;
  EXPECT_TRUE(through_wire(caf::make_message(status_atom::value)).match_elements<status_atom>());
  EXPECT_TRUE(through_wire(caf::make_message(leader_atom::value)).match_elements<leader_atom>());
  EXPECT_TRUE(
      through_wire(caf::make_message(step_down_atom::value)).match_elements<step_down_atom>());
  EXPECT_TRUE(through_wire(caf::make_message(joined_atom::value)).match_elements<joined_atom>());
  EXPECT_TRUE(
      through_wire(caf::make_message(directory_atom::value)).match_elements<directory_atom>());
  EXPECT_TRUE(through_wire(caf::make_message(groups_atom::value)).match_elements<groups_atom>());
  auto wait = through_wire(caf::make_message(wait_leader_atom::value, uint64_t{42}));
  ASSERT_TRUE((wait.match_elements<wait_leader_atom, uint64_t>()));
  EXPECT_EQ(wait.get_as<uint64_t>(1), 42u);
  auto log = through_wire(caf::make_message(recent_log_atom::value, uint32_t{7}));
  ASSERT_TRUE((log.match_elements<recent_log_atom, uint32_t>()));
  EXPECT_EQ(log.get_as<uint32_t>(1), 7u);
  auto term = through_wire(caf::make_message(uint64_t{9}));
  ASSERT_TRUE(term.match_elements<uint64_t>());
  EXPECT_EQ(term.get_as<uint64_t>(0), 9u);
  EXPECT_TRUE(through_wire(caf::message{}).empty());
  // A subscription leaves the subscriber on this side.
  pb::Frame f;
  ASSERT_TRUE(to_frame(caf::make_message(subscribe_atom::value, caf::actor{}, true), f));
  EXPECT_TRUE(f.subscribe().membership());
}

TEST(WireCodec, MessagesOfTheNodesOwnAreNotCarried) {
  using namespace cafraft;
  pb::Frame f;
  EXPECT_FALSE(to_frame(caf::make_message(tick_atom::value), f));
  EXPECT_FALSE(
      to_frame(caf::make_message(peer_handle_atom::value, std::string{"n2"}, caf::actor{}), f));
  EXPECT_FALSE(to_frame(caf::make_message(std::string{"text"}), f));
}

TEST(WireCodec, ErrorsKeepCodeDetailAndLeaderHint) {
  using namespace cafraft;
  pb::Frame f;
  to_frame(make_not_leader("n2", "10.0.0.2:4000"), f);
  auto back = error_of(frames_in(bytes_of(f)).at(0));
  std::string id, address;
  ASSERT_TRUE(leader_hint(back, id, address)) << render(back);
  EXPECT_EQ(id, "n2");
  EXPECT_EQ(address, "10.0.0.2:4000");
  pb::Frame g;
  to_frame(make_error(errc::overloaded, "4096 requests"), g);
  auto e = error_of(g);
  EXPECT_EQ(e.code(), static_cast<uint8_t>(errc::overloaded));
  EXPECT_NE(render(e).find("4096 requests"), std::string::npos);
  // A code this version does not know is not trusted as one: a later version's, or a retired
  // one (4 and 5, messages/errc.hpp).
  for (uint32_t code : {250u, 4u, 5u}) {
    pb::Frame h;
    h.mutable_error()->set_code(code);
    EXPECT_EQ(error_of(h).code(), static_cast<uint8_t>(errc::invalid_request)) << code;
  }
}

} // namespace
