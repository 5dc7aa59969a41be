// cafraft's wire protocol without the network (docs/protocol.md): length-prefixed frames of
// messages/wire.proto, the handshake and the limits. A wire_session takes the bytes a
// connection received and says what to do: the frames to hand on, the bytes to send back, or
// why the connection must close. The connection actor (actors/connection.hpp) only moves bytes;
// the fuzz target and the unit tests drive this class directly.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <cafraft/messages/wire.pb.h>

namespace cafraft::wire {

/// The protocol versions this build speaks (Hello.min_version..max_version). Version 2 adds
/// Frame.group (docs/groups.md): a connection negotiated at version 1 carries group 0 only.
constexpr uint32_t min_version = 1;
constexpr uint32_t max_version = 2;
/// The first version whose frames may name a group other than 0.
constexpr uint32_t groups_version = 2;
/// Hello.magic.
constexpr const char* magic = "cafraft";
/// Bytes of the length in front of every frame (big-endian).
constexpr size_t length_bytes = 4;

/// Hard limits of one connection (and of a listener's connections).
struct limits {
  /// The largest frame taken after the handshake (snapshot chunks are 1 MiB by default).
  size_t max_frame_bytes = 16u << 20;
  /// The largest frame taken before it: a Hello or a Welcome.
  size_t max_handshake_bytes = 4096;
  /// Requests the other side may have outstanding here; more are answered `overloaded`.
  size_t max_requests_in_flight = 4096;
  /// Bytes written to a connection but not yet taken by the other side; a reader that falls
  /// this far behind is closed.
  size_t max_unsent_bytes = 64u << 20;
  /// A connection that has not finished its handshake by then is closed (for a dialer, this
  /// is its connect timeout too).
  std::chrono::milliseconds handshake_timeout{5000};
  /// A connection that heard nothing for this long is closed. Each side sends a Ping when it
  /// sent nothing for a third of it, so only a hung or vanished peer is ever idle.
  std::chrono::milliseconds idle_timeout{3000};
  /// A frame whose first byte came longer ago than this, and is still not whole, is a slow
  /// sender holding memory: its connection is closed.
  std::chrono::milliseconds frame_timeout{30000};
  /// Connections a listener holds at once, and from one remote address.
  size_t max_connections = 4096;
  size_t max_connections_per_address = 256;
};

/// Why a connection was closed by its own side. Each has a counter (/metrics).
enum class fault : uint8_t {
  none = 0,
  frame_too_long, // a length above the limit
  undecodable,    // the bytes are not a Frame
  unknown_type,   // a Frame without a body this version knows
  out_of_order,   // the handshake's frames are missing, repeated or late
  refused,        // the handshake was refused: magic, version, cluster or identity
  not_allowed,    // a message this connection may not send (Raft from a client, ...)
  tls,            // the TLS layer failed (handshake, certificate, record)
  handshake_timeout,
  idle_timeout,
  slow_sender, // a frame took longer than frame_timeout to arrive
  slow_reader, // more than max_unsent_bytes waiting to be sent
  too_many_connections,
};
constexpr size_t fault_count = static_cast<size_t>(fault::too_many_connections) + 1;

/// The metric name of a fault, e.g. "frame_too_long".
const char* to_string(fault x);

/// Counters of a process's connections (/metrics: cafraft_wire_*).
struct counters {
  std::atomic<uint64_t> accepted{0};    // connections a listener took
  std::atomic<uint64_t> dialed{0};      // connections this process opened
  std::atomic<uint64_t> established{0}; // handshakes done
  std::atomic<int64_t> open{0};         // connections open now
  std::atomic<uint64_t> frames_in{0};
  std::atomic<uint64_t> frames_out{0};
  std::atomic<uint64_t> bytes_in{0};
  std::atomic<uint64_t> bytes_out{0};
  std::array<std::atomic<uint64_t>, fault_count> closed{}; // by the fault that closed them
};

/// The counters of this process.
counters& stats();

/// Appends `f` as one frame (length and bytes) to `out`.
void append_frame(const pb::Frame& f, std::vector<char>& out);

/// Cuts a byte stream into frames. Keeps at most one frame's bytes (up to the limit) buffered.
class frame_decoder {
public:
  explicit frame_decoder(size_t max_frame_bytes) : max_(max_frame_bytes) {}

  void set_max_frame_bytes(size_t n) { max_ = n; }

  /// Takes `n` received bytes.
  void feed(const char* data, size_t n);

  /// The next whole frame into `out`: true when there was one. On a bad frame, returns false
  /// and sets `error` (and `why`); nothing after it is read.
  bool next(pb::Frame& out, fault& error, std::string& why);

  /// Bytes of a frame that is not whole yet.
  size_t buffered() const { return buf_.size() - pos_; }

private:
  std::vector<char> buf_;
  size_t pos_ = 0;
  size_t max_;
};

/// Who this side of a connection is, and whom it expects.
struct identity {
  std::string cluster_id; // empty: any cluster (a client that does not know it)
  std::string node_id;    // empty: a client
  /// For the side that connects: the node it means to reach (empty: any node at the address).
  std::string expect_node_id;
};

/// The handshake and framing of one connection. Bytes in are plaintext (TLS, when used, is
/// below this).
/// The node a Raft message says it comes from (candidate, voter, leader or follower id); ""
/// for other bodies.
const std::string& raft_sender(const pb::Frame& f);

class session {
public:
  session(bool accepting, identity self, limits lim);

  /// The side that connected: the Hello to send first.
  pb::Frame hello() const;

  /// With TLS, the names the other side's verified certificate holds (CN and DNS SANs), and
  /// whether it may stand for a node at all (not with a certificate of the client CA). Set
  /// before the first bytes are fed; a node must be named by its certificate.
  void set_certificate_names(std::vector<std::string> names, bool may_be_node = true) {
    cert_names_ = std::move(names);
    tls_ = true;
    may_be_node_ = may_be_node;
  }

  /// Takes received bytes. Frames after the handshake go to `frames`, handshake answers to
  /// `out` (as bytes to send). Returns the fault that must close the connection, with `why`;
  /// fault::none to go on. After a fault nothing more is read.
  fault feed(const char* data, size_t n, std::vector<pb::Frame>& frames, std::vector<char>& out);

  bool established() const { return established_; }
  bool accepting() const { return accepting_; }
  /// The other side's node id (empty for a client), once established.
  const std::string& peer_node_id() const { return peer_node_; }
  /// Whether Raft message `f` may come over this connection: only from a node, and only in
  /// the name of the node the handshake named (with TLS: the one its certificate names), so
  /// that no member speaks as another (an AppendEntries as the leader, a vote as a voter).
  bool takes_raft(const pb::Frame& f) const;
  /// Which node ids are members (past or present) of the local node's configuration: with
  /// TLS, any certificate of the cluster's CA could otherwise name itself, say "client", and
  /// send AppendEntries of a higher term that would overwrite a follower's log.
  void set_member_check(std::function<bool(const std::string&)> is_member) {
    is_member_ = std::move(is_member);
  }
  /// Whether the other side is a node that the member check (if any) knows: Raft messages
  /// from any other are dropped (a joining node's are taken once it is in a configuration).
  bool peer_is_member() const;
  const std::string& peer_cluster_id() const { return peer_cluster_; }
  uint32_t version() const { return version_; }
  /// Why the last fault happened (for the log line and, in a refusal, the Error frame).
  const std::string& why() const { return why_; }
  size_t buffered() const { return decoder_.buffered(); }

private:
  fault accept_hello(const pb::Frame& f, std::vector<char>& out);
  fault take_welcome(const pb::Frame& f);
  fault refuse(std::string why, std::vector<char>& out);
  bool names(const std::string& id) const;

  bool accepting_;
  identity self_;
  limits lim_;
  frame_decoder decoder_;
  bool established_ = false;
  bool failed_ = false;
  bool tls_ = false;
  std::vector<std::string> cert_names_;
  bool may_be_node_ = true; // false: a certificate of the client CA (tls_files::client_ca)
  std::function<bool(const std::string&)> is_member_;
  std::string peer_node_;
  std::string peer_cluster_;
  uint32_t version_ = 0;
  std::string why_;
};

} // namespace cafraft::wire
