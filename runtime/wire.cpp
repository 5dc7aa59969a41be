#include <cafraft/runtime/wire.hpp>

#include <algorithm>
#include <cstring>

#include <cafraft/runtime/canary.hpp>

namespace cafraft::wire {

const char* to_string(fault x) {
  switch (x) {
  case fault::none:
    return "none";
  case fault::frame_too_long:
    return "frame_too_long";
  case fault::undecodable:
    return "undecodable";
  case fault::unknown_type:
    return "unknown_type";
  case fault::out_of_order:
    return "out_of_order";
  case fault::refused:
    return "refused";
  case fault::not_allowed:
    return "not_allowed";
  case fault::tls:
    return "tls";
  case fault::handshake_timeout:
    return "handshake_timeout";
  case fault::idle_timeout:
    return "idle_timeout";
  case fault::slow_sender:
    return "slow_sender";
  case fault::slow_reader:
    return "slow_reader";
  case fault::too_many_connections:
    return "too_many_connections";
  }
  return "unknown";
}

counters& stats() {
  static counters c;
  return c;
}

void append_frame(const pb::Frame& f, std::vector<char>& out) {
  auto n = f.ByteSizeLong();
  auto at = out.size();
  out.resize(at + length_bytes + n);
  auto* p = reinterpret_cast<unsigned char*>(out.data() + at);
  p[0] = static_cast<unsigned char>(n >> 24);
  p[1] = static_cast<unsigned char>(n >> 16);
  p[2] = static_cast<unsigned char>(n >> 8);
  p[3] = static_cast<unsigned char>(n);
  f.SerializeWithCachedSizesToArray(p + length_bytes);
}

void frame_decoder::feed(const char* data, size_t n) {
  if (pos_ > 0 && pos_ == buf_.size()) { // everything was read: start over
    buf_.clear();
    pos_ = 0;
  }
  buf_.insert(buf_.end(), data, data + n);
}

bool frame_decoder::next(pb::Frame& out, fault& error, std::string& why) {
  error = fault::none;
  if (buffered() < length_bytes)
    return false;
  auto* p = reinterpret_cast<const unsigned char*>(buf_.data() + pos_);
  size_t n = (size_t{p[0]} << 24) | (size_t{p[1]} << 16) | (size_t{p[2]} << 8) | size_t{p[3]};
  if (n > max_) {
    error = fault::frame_too_long;
    why = "a frame of " + std::to_string(n) + " bytes (the limit is " + std::to_string(max_) + ")";
    return false;
  }
  if (buffered() < length_bytes + n)
    return false;
  out.Clear();
  if (!out.ParseFromArray(p + length_bytes, static_cast<int>(n))) {
    error = fault::undecodable;
    why = "a frame of " + std::to_string(n) + " bytes that is not a cafraft.pb.Frame";
    return false;
  }
  pos_ += length_bytes + n;
  // Drop what was read once it is most of the buffer: a frame's bytes are kept, not copied
  // again for each read.
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > buf_.size() / 2) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(pos_));
    pos_ = 0;
  }
  return true;
}

const std::string& raft_sender(const pb::Frame& f) {
  static const std::string none;
  switch (f.body_case()) {
  case pb::Frame::kRequestVote:
    return f.request_vote().candidate_id();
  case pb::Frame::kRequestVoteResponse:
    return f.request_vote_response().voter_id();
  case pb::Frame::kAppendEntries:
    return f.append_entries().leader_id();
  case pb::Frame::kAppendEntriesResponse:
    return f.append_entries_response().follower_id();
  case pb::Frame::kInstallSnapshot:
    return f.install_snapshot().leader_id();
  case pb::Frame::kInstallSnapshotResponse:
    return f.install_snapshot_response().follower_id();
  case pb::Frame::kTimeoutNow:
    return f.timeout_now().leader_id();
  case pb::Frame::kReadIndex:
    return f.read_index().node_id();
  case pb::Frame::kReadIndexResponse:
    return f.read_index_response().leader_id();
  default:
    return none;
  }
}

bool session::takes_raft(const pb::Frame& f) const {
  if (peer_node_.empty())
    return false; // a client
  return raft_sender(f) == peer_node_ || CAFRAFT_CANARY("wire_trusts_raft_sender");
}

bool session::peer_is_member() const {
  return !peer_node_.empty() &&
         (!is_member_ || is_member_(peer_node_) || CAFRAFT_CANARY("raft_from_any_certificate"));
}

session::session(bool accepting, identity self, limits lim)
    : accepting_(accepting), self_(std::move(self)), lim_(lim), decoder_(lim.max_handshake_bytes) {}

pb::Frame session::hello() const {
  pb::Frame f;
  auto* h = f.mutable_hello();
  h->set_magic(magic);
  h->set_min_version(min_version);
  h->set_max_version(max_version);
  h->set_cluster_id(self_.cluster_id);
  h->set_node_id(self_.node_id);
  return f;
}

bool session::names(const std::string& id) const {
  return std::find(cert_names_.begin(), cert_names_.end(), id) != cert_names_.end();
}

fault session::refuse(std::string why, std::vector<char>& out) {
  why_ = std::move(why);
  pb::Frame f;
  f.mutable_error()->set_code(0);
  f.mutable_error()->set_detail(why_);
  append_frame(f, out);
  return fault::refused;
}

fault session::accept_hello(const pb::Frame& f, std::vector<char>& out) {
  if (f.body_case() != pb::Frame::kHello || f.id() != 0 || f.answer()) {
    why_ = "the first frame was not a Hello";
    return fault::out_of_order;
  }
  auto& h = f.hello();
  if (h.magic() != magic) {
    why_ = "not the cafraft protocol";
    return fault::refused;
  }
  auto lo = std::max(h.min_version(), min_version);
  auto hi = std::min(h.max_version(), max_version);
  if (lo > hi)
    return refuse("protocol versions " + std::to_string(h.min_version()) + ".." +
                      std::to_string(h.max_version()) + " asked, this node speaks " +
                      std::to_string(min_version) + ".." + std::to_string(max_version),
                  out);
  if (!h.cluster_id().empty() && !self_.cluster_id.empty() && h.cluster_id() != self_.cluster_id)
    return refuse("this is cluster " + self_.cluster_id + ", not cluster " + h.cluster_id(), out);
  if (!h.node_id().empty()) {
    if (h.node_id() == self_.node_id)
      return refuse("node " + h.node_id() + " connected to itself", out);
    if (tls_ && !may_be_node_)
      return refuse("a client certificate (of the client CA) cannot act as node " + h.node_id(),
                    out);
    if (tls_ && !names(h.node_id()) && !CAFRAFT_CANARY("wire_trusts_claimed_node_id"))
      return refuse("node " + h.node_id() + " is not named by its certificate", out);
  }
  peer_node_ = h.node_id();
  peer_cluster_ = h.cluster_id();
  version_ = hi;
  pb::Frame w;
  auto* welcome = w.mutable_welcome();
  welcome->set_version(version_);
  welcome->set_cluster_id(self_.cluster_id);
  welcome->set_node_id(self_.node_id);
  append_frame(w, out);
  return fault::none;
}

fault session::take_welcome(const pb::Frame& f) {
  if (f.body_case() == pb::Frame::kError) {
    why_ = "refused: " + f.error().detail();
    return fault::refused;
  }
  if (f.body_case() != pb::Frame::kWelcome || f.id() != 0 || f.answer()) {
    why_ = "the first frame was not a Welcome";
    return fault::out_of_order;
  }
  auto& w = f.welcome();
  if (w.version() < min_version || w.version() > max_version) {
    why_ = "the node chose protocol version " + std::to_string(w.version()) +
           ", this side speaks " + std::to_string(min_version) + ".." + std::to_string(max_version);
    return fault::refused;
  }
  if (!self_.cluster_id.empty() && !w.cluster_id().empty() && w.cluster_id() != self_.cluster_id) {
    why_ = "the node is of cluster " + w.cluster_id() + ", not " + self_.cluster_id;
    return fault::refused;
  }
  if (!self_.expect_node_id.empty() && w.node_id() != self_.expect_node_id) {
    why_ = "the node there is " + (w.node_id().empty() ? std::string{"unnamed"} : w.node_id()) +
           ", not " + self_.expect_node_id;
    return fault::refused;
  }
  if (tls_ && !self_.expect_node_id.empty() && !names(self_.expect_node_id)) {
    why_ = "the certificate of the node there does not name " + self_.expect_node_id;
    return fault::refused;
  }
  if (tls_ && !w.node_id().empty() && !may_be_node_) {
    why_ = "the node there shows a client certificate (of the client CA)";
    return fault::refused;
  }
  peer_node_ = w.node_id();
  peer_cluster_ = w.cluster_id();
  version_ = w.version();
  return fault::none;
}

fault session::feed(const char* data, size_t n, std::vector<pb::Frame>& frames,
                    std::vector<char>& out) {
  if (failed_)
    return fault::out_of_order;
  decoder_.feed(data, n);
  pb::Frame f;
  fault error = fault::none;
  auto fail = [&](fault x) {
    failed_ = true;
    return x;
  };
  while (decoder_.next(f, error, why_)) {
    if (!established_) {
      auto x = accepting_ ? accept_hello(f, out) : take_welcome(f);
      if (x != fault::none)
        return fail(x);
      established_ = true;
      decoder_.set_max_frame_bytes(lim_.max_frame_bytes);
      continue;
    }
    switch (f.body_case()) {
    case pb::Frame::BODY_NOT_SET:
      why_ = "a frame of a type this version does not know";
      return fail(fault::unknown_type);
    case pb::Frame::kHello:
    case pb::Frame::kWelcome:
      why_ = "a second handshake";
      return fail(fault::out_of_order);
    default:
      frames.push_back(std::move(f));
      f = pb::Frame{};
    }
  }
  if (error != fault::none)
    return fail(error);
  return fault::none;
}

} // namespace cafraft::wire
