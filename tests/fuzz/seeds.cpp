// Writes the seed corpora of the fuzz targets: `fuzz-seeds DIR` fills DIR/<target>/ with small
// valid inputs (the files in tests/fuzz/corpus/ are its output, committed). Each seed is what
// the target's header comment describes, built from the real encoders (protobuf, wal::frame,
// CAF's binary_serializer), so that the fuzzer starts from inputs that reach deep.
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <map>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/message.hpp>

#include "fuzz_common.hpp"
#include <cafraft/messages/pb_inspect.hpp>
#include <cafraft/messages/register.hpp>
#include <cafraft/runtime/crc32c.hpp>
#include <cafraft/runtime/state_machine.hpp>
#include <cafraft/runtime/wire.hpp>

using namespace cafraft;
namespace fz = cafraft::fuzz;

namespace {

std::string root;
std::map<std::string, int> counts;

void seed(const std::string& target, const std::string& name, const std::string& bytes) {
  auto dir = root + "/" + target;
  mkdir(root.c_str(), 0755);
  mkdir(dir.c_str(), 0755);
  char num[8];
  std::snprintf(num, sizeof num, "%02d", ++counts[target]);
  std::ofstream out{dir + "/" + num + "-" + name, std::ios::binary | std::ios::trunc};
  out << bytes;
}

caf::actor_system* sys = nullptr;

template <class... Ts> std::string wire(Ts&&... xs) {
  std::vector<char> buf;
  caf::binary_serializer sink{*sys, buf};
  auto msg = caf::make_message(std::forward<Ts>(xs)...);
  if (auto err = sink(msg)) {
    std::fprintf(stderr, "fuzz-seeds: cannot serialize a message\n");
    std::exit(1);
  }
  return std::string{buf.begin(), buf.end()};
}

std::string put_command(const std::string& key, const std::string& value) {
  pb::KvCommand c;
  c.mutable_put()->set_key(key);
  c.mutable_put()->set_value(value);
  return c.SerializeAsString();
}

void add_members(google::protobuf::RepeatedPtrField<pb::Member>* ms) {
  for (auto id : {"n1", "n2", "n3"}) {
    auto* m = ms->Add();
    m->set_id(id);
    m->set_address(std::string{"h"} + id[1] + ":" + id[1]);
  }
}

// -- wire ------------------------------------------------------------------------------------

void wire_seeds() {
  std::vector<std::pair<std::string, std::string>> msgs;
  pb::AppendEntries ae;
  ae.set_term(3);
  ae.set_leader_id("n2");
  ae.set_prev_log_index(6);
  ae.set_prev_log_term(2);
  *ae.add_entries() = fz::entry(7, 3, put_command("a", "1"));
  *ae.add_entries() = fz::entry(8, 3, put_command("b", "2"));
  ae.set_leader_commit(7);
  ae.set_read_round(1);
  ae.set_leader_last_index(8);
  msgs.emplace_back("append-entries", wire(ae));
  pb::AppendEntries hb;
  hb.set_term(3);
  hb.set_leader_id("n2");
  hb.set_prev_log_index(6);
  hb.set_prev_log_term(2);
  hb.set_leader_commit(6);
  msgs.emplace_back("heartbeat", wire(hb));
  pb::AppendEntries cfg = ae;
  cfg.clear_entries();
  pb::Configuration c;
  add_members(c.mutable_members());
  c.mutable_members(2)->set_learner(true);
  auto e = fz::entry(7, 3, c.SerializeAsString());
  e.set_type(pb::ENTRY_CONFIG);
  *cfg.add_entries() = e;
  msgs.emplace_back("append-config", wire(cfg));
  pb::RequestVote rv;
  rv.set_term(4);
  rv.set_candidate_id("n3");
  rv.set_last_log_index(6);
  rv.set_last_log_term(2);
  msgs.emplace_back("request-vote", wire(rv));
  rv.set_pre_vote(true);
  rv.set_removed_at(5);
  rv.set_removed_at_term(2);
  msgs.emplace_back("pre-vote", wire(rv));
  pb::RequestVoteResponse rvr;
  rvr.set_term(3);
  rvr.set_voter_id("n1");
  rvr.set_granted(true);
  msgs.emplace_back("vote-response", wire(rvr));
  pb::AppendEntriesResponse aer;
  aer.set_term(3);
  aer.set_follower_id("n1");
  aer.set_success(true);
  aer.set_match_index(10);
  aer.set_last_log_index(10);
  aer.set_read_round(1);
  msgs.emplace_back("append-ok", wire(aer));
  aer.set_success(false);
  aer.set_match_index(0);
  aer.set_reject_hint(7);
  aer.set_rejected_index(10);
  aer.set_follower_id("n3");
  msgs.emplace_back("append-reject", wire(aer));
  std::string data = kv_store{}.snapshot();
  kv_store kv;
  kv.apply(1, put_command("k", "snapshot value"));
  data = kv.snapshot();
  pb::InstallSnapshot is;
  is.set_term(3);
  is.set_leader_id("n2");
  is.mutable_meta()->set_index(9);
  is.mutable_meta()->set_term(3);
  add_members(is.mutable_meta()->mutable_members());
  is.mutable_meta()->set_size(data.size());
  is.mutable_meta()->set_crc32c(crc32c(data));
  is.set_offset(0);
  is.set_data(data);
  is.set_done(true);
  msgs.emplace_back("install-snapshot", wire(is));
  pb::InstallSnapshotResponse isr;
  isr.set_term(3);
  isr.set_follower_id("n3");
  isr.set_snapshot_index(4);
  isr.set_next_offset(16);
  msgs.emplace_back("snapshot-response", wire(isr));
  pb::TimeoutNow tn;
  tn.set_term(3);
  tn.set_leader_id("n2");
  msgs.emplace_back("timeout-now", wire(tn));
  pb::PutRequest put;
  put.set_key("key");
  put.set_value("value");
  msgs.emplace_back("put", wire(put));
  pb::DeleteRequest del;
  del.set_key("key");
  msgs.emplace_back("delete", wire(del));
  pb::CasRequest cas;
  cas.set_key("k0");
  cas.set_expected("v");
  cas.set_value("w");
  msgs.emplace_back("cas", wire(cas));
  pb::GetRequest get;
  get.set_key("k0");
  msgs.emplace_back("get", wire(get));
  pb::ProposeRequest prop;
  prop.set_data(put_command("p", "q"));
  msgs.emplace_back("propose", wire(prop));
  pb::BatchRequest batch;
  *batch.add_items()->mutable_put() = put;
  *batch.add_items()->mutable_get() = get;
  *batch.add_items()->mutable_cas() = cas;
  msgs.emplace_back("batch", wire(batch));
  pb::JoinRequest join;
  join.set_id("n4");
  join.set_address("h4:4");
  join.set_incarnation(77);
  msgs.emplace_back("join", wire(join));
  pb::LeaveRequest leave;
  leave.set_id("n3");
  msgs.emplace_back("leave", wire(leave));
  pb::KvCommand kc;
  *kc.mutable_put() = put;
  msgs.emplace_back("kv-command", wire(kc));
  msgs.emplace_back("log-entry", wire(e));
  msgs.emplace_back("configuration", wire(c));
  pb::NodeStatus st;
  st.set_id("n1");
  st.set_role("follower");
  add_members(st.mutable_members());
  msgs.emplace_back("node-status", wire(st));
  pb::Inspection insp;
  insp.set_name("n1/leader");
  (*insp.mutable_fields())["term"] = "3";
  insp.set_rate_1s(2.5);
  msgs.emplace_back("inspection", wire(insp));
  std::vector<pb::LogEntry> entries{fz::entry(1, 1), fz::entry(2, 1)};
  msgs.emplace_back("entry-vector", wire(entries));
  msgs.emplace_back("atom-and-put", wire(caf::atom("put"), put, uint64_t{7}));
  for (auto& [name, bytes] : msgs)
    seed("wire", name, fz::output{}.u8(0).u8(0).blob(bytes).str());
  // An honest exchange between the leader and the follower: ticks, deliveries both ways,
  // compaction (so that a snapshot goes over in chunks), with client writes among them.
  fz::output flow;
  flow.u8(0);
  for (int round = 0; round < 6; ++round) {
    flow.u8(3).u8(1).u8(2).u8(1).u8(2);
    if (round == 2)
      flow.u8(0).blob(wire(put)).u8(1).u8(2);
    if (round == 3)
      flow.u8(7).u8(1).u8(2).u8(1).u8(2).u8(1).u8(2);
  }
  seed("wire", "honest-flow", flow.str());
  fz::output flow2;
  flow2.u8(1);
  flow2.u8(0).blob(wire(ae)).u8(0).blob(wire(put)).u8(7).u8(1).u8(2).u8(3).u8(1).u8(2);
  flow2.u8(0).blob(wire(join)).u8(3).u8(1).u8(2).u8(7).u8(1).u8(2).u8(1).u8(2).u8(1).u8(2);
  seed("wire", "snapshot-flow", flow2.str());
}

// -- storage ---------------------------------------------------------------------------------

std::vector<pb::LogEntry> entries(uint64_t from, uint64_t to, uint64_t term) {
  std::vector<pb::LogEntry> out;
  for (auto i = from; i <= to; ++i)
    out.push_back(fz::entry(i, term, put_command("k" + std::to_string(i), "v")));
  return out;
}

void wal_reader_seeds() {
  auto seg = fz::segment_file(1, 1, {entries(1, 2, 1), entries(3, 3, 1)});
  seed("wal_reader", "segment", fz::output{}.u8(0).u16(4095).raw(seg).str());
  seed("wal_reader", "segment-chunks", fz::output{}.u8(0).u16(15).raw(seg).str());
  seed("wal_reader", "reserved",
       fz::output{}.u8(1).u16(31).raw(seg + std::string(100, '\0')).str());
  seed("wal_reader", "torn", fz::output{}.u8(0).u16(63).raw(seg.substr(0, seg.size() - 5)).str());
  auto torn_zeros = seg.substr(0, seg.size() - 6) + std::string(6, '\0');
  seed("wal_reader", "torn-zeros",
       fz::output{}.u8(1).u16(11).raw(torn_zeros + std::string(40, '\0')).str());
  auto bad = seg;
  bad[20] = static_cast<char>(bad[20] ^ 0x40);
  seed("wal_reader", "corrupt", fz::output{}.u8(0).u16(100).raw(bad).str());
  seed("wal_reader", "empty-records",
       fz::output{}.u8(0).u16(12).raw(wal::frame("") + wal::frame("a")).str());
}

std::string opts(uint8_t b) {
  return fz::output{}.u8(b).str();
}

void hard_state_seeds() {
  seed("hard_state", "slot0", opts(0) + fz::hard_state_file(3, "n2", 1));
  seed("hard_state", "slot1", opts(1) + fz::hard_state_file(4, "n1", 2));
  auto both = fz::hard_state_file(3, "n2", 1);
  both.resize(4096, '\0');
  both += fz::hard_state_file(5, "", 2).substr(4096);
  seed("hard_state", "both", opts(2) + both);
  pb::HardStateSlot s;
  s.set_sequence(9);
  s.mutable_hard_state()->set_term(7);
  s.mutable_hard_state()->set_resyncing(true);
  s.mutable_hard_state()->set_incarnation(12345);
  seed("hard_state", "resyncing", opts(8) + fz::framed(s));
}

void manifest_seeds() {
  seed("manifest", "ours", opts(0) + fz::manifest_file());
  seed("manifest", "no-cluster", opts(1) + fz::manifest_file("n1", ""));
  seed("manifest", "other-node", opts(2) + fz::manifest_file("n9", "c1"));
  pb::Manifest m;
  m.set_format(2);
  m.set_node_id("n1");
  seed("manifest", "format-2", opts(3) + fz::framed(m));
}

pb::SnapshotMeta meta_of(uint64_t index, uint64_t term, const std::string& data) {
  pb::SnapshotMeta meta;
  meta.set_index(index);
  meta.set_term(term);
  add_members(meta.mutable_members());
  meta.set_size(data.size());
  meta.set_crc32c(crc32c(data));
  return meta;
}

void snapshot_file_seeds() {
  std::string data = "snapshot data";
  auto in = [&](uint8_t o, uint8_t index, uint8_t wal, uint64_t term) {
    return fz::output{}
        .u8(o)
        .u8(index)
        .u8(wal)
        .raw(fz::snapshot_file(meta_of(index, term, data), data))
        .str();
  };
  seed("snapshot_file", "at-4", in(0, 4, 0, 2));
  seed("snapshot_file", "at-3-term-mismatch", in(1, 3, 0, 2));
  seed("snapshot_file", "restart-at-8", in(2, 8, 1, 3));
  seed("snapshot_file", "past-the-wal", in(3, 20, 2, 3));
  seed("snapshot_file", "empty-data",
       fz::output{}.u8(8).u8(5).u8(2).raw(fz::snapshot_file(meta_of(5, 2, ""), "")).str());
}

void wal_segments_seeds() {
  auto one = fz::segment_file(1, 1, {entries(1, 3, 1), entries(4, 5, 2)});
  auto two = fz::segment_file(2, 6, {entries(6, 8, 3)});
  seed("wal_segments", "two", fz::output{}.u8(0).u8(0).u8(1).blob(one).u8(2).blob(two).str());
  seed("wal_segments", "chunked", fz::output{}.u8(3).u8(0).u8(1).blob(one).u8(2).blob(two).str());
  auto cut = fz::segment_file(2, 4, {entries(4, 6, 3)}, false, 0);
  seed("wal_segments", "overlap", fz::output{}.u8(1).u8(0).u8(1).blob(one).u8(2).blob(cut).str());
  pb::WalRecord tr;
  tr.set_truncate_from(3);
  *tr.add_entries() = fz::entry(3, 2);
  tr.set_seal(fz::seal);
  seed("wal_segments", "truncate",
       fz::output{}
           .u8(2)
           .u8(0)
           .u8(1)
           .blob(fz::segment_file(1, 1, {entries(1, 5, 1)}) + fz::framed(tr))
           .str());
  auto restart = fz::segment_file(3, 11, {entries(11, 12, 3)}, true);
  seed("wal_segments", "restart",
       fz::output{}.u8(4).u8(10).u8(1).blob(one).u8(3).blob(restart).str());
  seed("wal_segments", "snapshot-inside",
       fz::output{}.u8(5).u8(4).u8(1).blob(one).u8(2).blob(two).str());
  seed("wal_segments", "reserved-tail",
       fz::output{}.u8(16 | 1).u8(0).u8(1).blob(one + std::string(200, '\0')).str());
  seed("wal_segments", "torn-tail",
       fz::output{}.u8(8).u8(0).u8(1).blob(one).u8(2).blob(two.substr(0, two.size() - 7)).str());
  seed("wal_segments", "gap",
       fz::output{}
           .u8(8)
           .u8(0)
           .u8(1)
           .blob(one)
           .u8(3)
           .blob(fz::segment_file(3, 9, {entries(9, 9, 3)}))
           .str());
}

void snapshot_chunks_seeds() {
  kv_store kv;
  for (int i = 0; i < 8; ++i)
    kv.apply(static_cast<uint64_t>(i + 1), put_command("key" + std::to_string(i), "value"));
  auto data = kv.snapshot();
  auto meta = meta_of(4, 2, data);
  auto chunk = [&](uint64_t offset, size_t n) {
    pb::InstallSnapshot is;
    is.set_term(3);
    is.set_leader_id("n2");
    *is.mutable_meta() = meta;
    is.set_offset(offset);
    is.set_data(data.substr(offset, n));
    is.set_done(offset + n >= data.size());
    return is.SerializeAsString();
  };
  fz::output whole;
  whole.u8(0).u8(0).blob(chunk(0, 40)).u8(1).blob(chunk(40, 40)).u8(0).blob(chunk(80, 1000));
  whole.u8(2).u8(3).u8(2);
  seed("snapshot_chunks", "three-chunks", whole.str());
  fz::output reset;
  reset.u8(1).u8(8).blob(chunk(0, 1000)).u8(3).u8(2).u8(2);
  seed("snapshot_chunks", "reset", reset.str());
  fz::output resend;
  resend.u8(2).u8(0).blob(chunk(0, 40)).u8(0).blob(chunk(0, 40)).u8(0).blob(chunk(80, 40));
  resend.u8(0).blob(chunk(40, 1000)).u8(1).blob(chunk(40, 1000)).u8(3);
  seed("snapshot_chunks", "resend", resend.str());
  auto meta2 = meta_of(9, 3, data.substr(0, 30));
  pb::InstallSnapshot later;
  later.set_term(3);
  *later.mutable_meta() = meta2;
  later.set_data(data.substr(0, 30));
  later.set_done(true);
  fz::output two;
  two.u8(0).u8(0).blob(chunk(0, 1000)).u8(2).u8(0).blob(later.SerializeAsString()).u8(3);
  seed("snapshot_chunks", "two-snapshots", two.str());
}

void data_dir_seeds() {
  std::string data = "snapshot data";
  fz::output d;
  d.u8(0);
  d.u8(0).blob(fz::manifest_file());
  d.u8(1).blob(fz::hard_state_file(3, "n2"));
  d.u8(2).u8(1).blob(fz::segment_file(1, 1, {entries(1, 4, 1)}));
  d.u8(2).u8(2).blob(fz::segment_file(2, 5, {entries(5, 6, 2)}));
  d.u8(3).u8(3).blob(fz::snapshot_file(meta_of(3, 1, data), data));
  seed("data_dir", "sound", d.str());
  fz::output n;
  n.u8(1);
  n.u8(4).blob(fz::manifest_file());
  n.u8(1).blob(fz::hard_state_file(0, ""));
  n.u8(2).u8(1).blob(fz::segment_file(1, 1, {}));
  seed("data_dir", "creation-interrupted", n.str());
  fz::output o;
  o.u8(2);
  o.u8(0).blob(fz::manifest_file());
  o.u8(1).blob(fz::hard_state_file(1, ""));
  o.u8(15).raw("000000000000000a").blob(fz::segment_file(10, 1, {entries(1, 1, 1)}));
  o.u8(6).blob("wal-0000000000000001.log.discarded").blob("old");
  o.u8(5).blob("partial");
  o.u8(7).raw("0000000000000002").blob(fz::snapshot_file(meta_of(2, 1, data), data));
  seed("data_dir", "names", o.str());
  seed("data_dir", "empty", fz::output{}.u8(0).str());
}

// -- the programs' parsers -------------------------------------------------------------------

std::string args(const std::vector<std::string>& xs) {
  std::string out;
  for (auto& x : xs) {
    if (!out.empty())
      out += '\0';
    out += x;
  }
  return out;
}

void node_options_seeds() {
  auto plain = [](uint8_t setup, const std::vector<std::string>& xs) {
    return fz::output{}.u8(setup).blob("").u8(0).raw(args(xs)).str();
  };
  seed("node_options", "initial-cluster",
       plain(0, {"--id", "n1", "--data-dir", "/d", "--listen", "127.0.0.1:7001",
                 "--initial-cluster", "n1=127.0.0.1:7001,n2=127.0.0.1:7002", "--insecure"}));
  seed("node_options", "join-tls",
       plain(0, {"--id=n4", "--data-dir=/d", "--listen=h:4", "--join=h:1,h:2", "--tls-cert=c",
                 "--tls-key=k", "--tls-ca=a", "--election-min-ms=300", "--election-max-ms=600",
                 "--heartbeat-ms=100", "--admin=h:9", "--scheduler=stealing", "--threads=4",
                 "--log-level=debug"}));
  seed("node_options", "restart",
       plain(1, {"--id", "n1", "--data-dir", "/d", "--listen", "h:1", "--insecure", "--cluster-id",
                 "c1"}));
  seed("node_options", "help", plain(0, {"--help"}));
  seed("node_options", "version", plain(0, {"--version"}));
  seed("node_options", "bad-number", plain(0, {"--id", "n1", "--heartbeat-ms", "fast"}));
  std::string toml = "id = \"n1\"\ndata-dir = \"/d\"\nlisten = \"h:1\"\n"
                     "initial-cluster = \"n1=h:1\"\ninsecure = true\nelection-min-ms = 200\n";
  seed("node_options", "config-toml",
       fz::output{}.u8(8).blob(toml).u8(0).raw(args({"--threads", "2"})).str());
  std::string ini = "[default]\nid=n2\ndata-dir=/d\nlisten=h:2\njoin=h:1\ninsecure=1\n";
  seed("node_options", "config-ini", fz::output{}.u8(8).blob(ini).u8(0).str());
  fz::output env;
  env.u8(0).blob("").u8(4);
  env.u8(0).blob("n1").u8(1).blob("/d").u8(2).blob("h:1").u8(9).blob("true");
  env.raw(args({"--initial-cluster", "n1=h:1"}));
  seed("node_options", "environment", env.str());
}

void console_parse_seeds() {
  seed("console_parse", "simple", "put key value");
  seed("console_parse", "two", "put a 1; get a");
  seed("console_parse", "quotes", "put \"a key\" 'a; value'; get \"a \\\"key\\\"\"");
  seed("console_parse", "empty-word", "put '' \"\" ;;");
  seed("console_parse", "unterminated", "put \"abc");
}

std::string framed(const pb::Frame& f) {
  std::vector<char> out;
  wire::append_frame(f, out);
  return {out.begin(), out.end()};
}

void frames_seeds() {
  pb::Frame hello;
  hello.mutable_hello()->set_magic(wire::magic);
  hello.mutable_hello()->set_min_version(wire::min_version);
  hello.mutable_hello()->set_max_version(wire::max_version);
  hello.mutable_hello()->set_cluster_id("c1");
  auto client_hello = framed(hello);
  hello.mutable_hello()->set_node_id("n2");
  auto node_hello = framed(hello);
  pb::Frame put;
  put.set_id(1);
  put.mutable_put()->set_key("k");
  put.mutable_put()->set_value("v");
  pb::Frame get;
  get.set_id(2);
  get.mutable_get()->set_key("k");
  pb::Frame status;
  status.set_id(3);
  status.mutable_status();
  pb::Frame wait;
  wait.set_id(4);
  wait.mutable_wait_leader()->set_term(7);
  pb::Frame ping;
  ping.mutable_ping();
  auto requests = framed(put) + framed(get) + framed(status) + framed(wait) + framed(ping);
  seed("frames", "client", fz::output{}.u8(1).blob(client_hello + requests).str());
  fz::output pieces;
  pieces.u8(1);
  auto all = client_hello + requests;
  for (size_t at = 0; at < all.size(); at += 3)
    pieces.blob(all.substr(at, 3));
  seed("frames", "client-pieces", pieces.str());
  pb::Frame ae;
  ae.mutable_append_entries()->set_term(3);
  ae.mutable_append_entries()->set_leader_id("n2");
  ae.mutable_append_entries()->add_entries()->set_data(put_command("k", "v"));
  seed("frames", "node-tls", fz::output{}.u8(3).blob(node_hello).blob(framed(ae)).str());
  pb::Frame welcome;
  welcome.mutable_welcome()->set_version(wire::max_version);
  welcome.mutable_welcome()->set_node_id("n2");
  welcome.mutable_welcome()->set_cluster_id("c1");
  pb::Frame answer;
  answer.set_id(1);
  answer.set_answer(true);
  answer.mutable_write_response()->set_index(5);
  pb::Frame refused;
  refused.set_id(2);
  refused.set_answer(true);
  refused.mutable_error()->set_code(1);
  refused.mutable_error()->set_leader_id("n3");
  pb::Frame event;
  event.set_id(9);
  event.mutable_leadership_event()->set_leader_id("n2");
  seed("frames", "dialer",
       fz::output{}
           .u8(0)
           .blob(framed(welcome) + framed(answer))
           .blob(framed(refused))
           .blob(framed(event))
           .str());
  seed("frames", "small-limit", fz::output{}.u8(5).blob(client_hello).blob(framed(put)).str());
  seed("frames", "basp",
       fz::output{}
           .u8(1)
           .blob(std::string(8, '\0') + std::string("\x80\0\0\0", 4) + std::string(64, 'r'))
           .str());
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz-seeds DIR (writes DIR/<target>/NN-name)\n");
    return 2;
  }
  root = argv[1];
  caf::actor_system_config cfg;
  cfg.set("scheduler.policy", caf::atom("testing"));
  register_types(cfg);
  caf::actor_system system{cfg};
  sys = &system;
  wire_seeds();
  wal_reader_seeds();
  hard_state_seeds();
  manifest_seeds();
  snapshot_file_seeds();
  wal_segments_seeds();
  snapshot_chunks_seeds();
  data_dir_seeds();
  node_options_seeds();
  console_parse_seeds();
  frames_seeds();
  for (auto& [target, n] : counts)
    std::printf("%s: %d seeds\n", target.c_str(), n);
  return 0;
}
