#include "apps/admin.hpp"

#include <algorithm>
#include <cstring>
#include <regex>
#include <set>
#include <sstream>

namespace cafraft {

namespace {

std::string field(const pb::Inspection& i, const std::string& key) {
  auto f = i.fields().find(key);
  return f == i.fields().end() ? std::string{} : f->second;
}

std::string escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"')
      out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

} // namespace

std::string render_metrics(const pb::NodeStatus& st, const std::vector<pb::Inspection>& actors) {
  std::ostringstream out;
  auto node = "node=\"" + escape(st.id()) + "\"";
  auto gauge = [&](const char* name, const char* help, const std::string& labels, auto value) {
    out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " gauge\n"
        << name << '{' << labels << "} " << value << '\n';
  };
  gauge("cafraft_term", "Current Raft term.", node, st.term());
  gauge("cafraft_commit_index", "Highest log index known to be committed.", node,
        st.commit_index());
  gauge("cafraft_applied_index", "Highest log index handed to the state machine.", node,
        st.applied_index());
  gauge("cafraft_last_log_index", "Index of the last entry in the log.", node, st.last_log_index());
  gauge("cafraft_is_leader", "1 when this node leads.", node, st.role() == "leader" ? 1 : 0);
  out << "# HELP cafraft_peer_lag_entries Entries a follower lacks behind the leader's log "
         "(leader only).\n# TYPE cafraft_peer_lag_entries gauge\n";
  for (auto& a : actors)
    if (a.kind() == "leader")
      for (auto& [key, value] : a.fields()) {
        auto dot = key.rfind(".match");
        if (key.rfind("peer.", 0) != 0 || dot == std::string::npos || dot + 6 != key.size())
          continue;
        auto peer = key.substr(5, dot - 5);
        auto match = std::stoull(value);
        auto lag = st.last_log_index() > match ? st.last_log_index() - match : 0;
        out << "cafraft_peer_lag_entries{" << node << ",peer=\"" << escape(peer) << "\"} " << lag
            << '\n';
      }
  for (auto& a : actors)
    if (a.kind() == "storage") {
      out << "# HELP cafraft_storage_write_seconds Time of a storage write, fsync included.\n"
             "# TYPE cafraft_storage_write_seconds histogram\n";
      std::vector<std::pair<double, std::string>> buckets;
      for (auto& [key, value] : a.fields())
        if (key.rfind("write_us_le_", 0) == 0)
          buckets.emplace_back(std::stod(key.substr(12)), value);
      std::sort(buckets.begin(), buckets.end());
      for (auto& [le, count] : buckets)
        out << "cafraft_storage_write_seconds_bucket{" << node << ",le=\"" << le / 1e6 << "\"} "
            << count << '\n';
      auto count = field(a, "group_commits");
      auto sum = field(a, "sum_write_us");
      out << "cafraft_storage_write_seconds_bucket{" << node << ",le=\"+Inf\"} "
          << (count.empty() ? "0" : count) << '\n'
          << "cafraft_storage_write_seconds_sum{" << node << "} "
          << (sum.empty() ? 0.0 : std::stod(sum) / 1e6) << '\n'
          << "cafraft_storage_write_seconds_count{" << node << "} " << (count.empty() ? "0" : count)
          << '\n';
    }
  std::map<std::string, uint64_t> mailbox, handled;
  for (auto& a : actors) {
    mailbox[a.kind()] += a.mailbox();
    handled[a.kind()] += a.handled();
  }
  out << "# HELP cafraft_actor_mailbox_messages Messages waiting in the mailboxes of the "
         "node's actors, by kind.\n# TYPE cafraft_actor_mailbox_messages gauge\n";
  for (auto& [kind, n] : mailbox)
    out << "cafraft_actor_mailbox_messages{" << node << ",kind=\"" << escape(kind) << "\"} " << n
        << '\n';
  out << "# HELP cafraft_actor_messages_handled_total Messages handled by the node's actors, by "
         "kind.\n# TYPE cafraft_actor_messages_handled_total counter\n";
  for (auto& [kind, n] : handled)
    out << "cafraft_actor_messages_handled_total{" << node << ",kind=\"" << escape(kind) << "\"} "
        << n << '\n';
  return out.str();
}

std::string render_wire_metrics(const std::string& id) {
  auto& c = wire::stats();
  std::ostringstream out;
  auto node = "node=\"" + escape(id) + "\"";
  auto one = [&](const char* name, const char* type, const char* help, auto value) {
    out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n'
        << name << '{' << node << "} " << value << '\n';
  };
  one("cafraft_wire_connections_open", "gauge", "Connections open now.", c.open.load());
  one("cafraft_wire_connections_accepted_total", "counter", "Connections the listener took.",
      c.accepted.load());
  one("cafraft_wire_connections_dialed_total", "counter", "Connections this node opened.",
      c.dialed.load());
  one("cafraft_wire_handshakes_total", "counter", "Connections whose handshake was done.",
      c.established.load());
  one("cafraft_wire_frames_received_total", "counter", "Frames received.", c.frames_in.load());
  one("cafraft_wire_frames_sent_total", "counter", "Frames sent.", c.frames_out.load());
  one("cafraft_wire_bytes_received_total", "counter", "Bytes received (TLS included).",
      c.bytes_in.load());
  one("cafraft_wire_bytes_sent_total", "counter", "Bytes sent (TLS included).", c.bytes_out.load());
  out << "# HELP cafraft_wire_connections_closed_total Connections closed, by why (none: an "
         "orderly close).\n# TYPE cafraft_wire_connections_closed_total counter\n";
  for (size_t i = 0; i < wire::fault_count; ++i)
    out << "cafraft_wire_connections_closed_total{" << node << ",reason=\""
        << wire::to_string(static_cast<wire::fault>(i)) << "\"} " << c.closed[i].load() << '\n';
  return out.str();
}

std::string check_prometheus_text(const std::string& text) {
  static const std::regex sample{
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*\})? (-?[0-9.eE+-]+|\+Inf|-Inf|NaN)$)"};
  static const std::regex type{
      R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)"};
  std::set<std::string> typed;
  std::istringstream in{text};
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    std::smatch m;
    if (line.empty() || line.rfind("# HELP ", 0) == 0)
      continue;
    if (line.rfind("# TYPE", 0) == 0) {
      if (!std::regex_match(line, m, type))
        return "line " + std::to_string(n) + ": bad TYPE line: " + line;
      if (!typed.insert(m[1]).second)
        return "line " + std::to_string(n) + ": family typed twice: " + line;
      continue;
    }
    if (line[0] == '#')
      continue;
    if (!std::regex_match(line, m, sample))
      return "line " + std::to_string(n) + ": not a sample: " + line;
    std::string name = m[1];
    bool known = typed.count(name) > 0;
    for (auto suffix : {"_bucket", "_sum", "_count"})
      if (!known && name.size() > std::strlen(suffix) &&
          name.compare(name.size() - std::strlen(suffix), std::string::npos, suffix) == 0)
        known = typed.count(name.substr(0, name.size() - std::strlen(suffix))) > 0;
    if (!known)
      return "line " + std::to_string(n) + ": sample before its # TYPE: " + line;
  }
  return {};
}

} // namespace cafraft
