// Real cafraft-node processes on 127.0.0.1 with free ports, driven with cafraftctl and with a
// remote_client (ctest label "process"): a cluster forms, takes writes, loses its leader to
// kill -9, elects another, takes the node back from its data, grows by a node that joins and
// shrinks by one that leaves; with TLS, a certificate from another CA is refused.
#include "process_fixture.hpp"

namespace cafraft::test {
namespace {

TEST_F(ProcessCluster, SurvivesLeaderKillAndMembershipChanges) {
  phase_clock phase;
  std::vector<std::string> ids{"n1", "n2", "n3"};
  auto initial = initial_cluster(ids);
  for (auto& id : ids)
    start_node(id, {"--initial-cluster", initial, "--insecure"});
  auto first = leader(ids);
  ASSERT_FALSE(first.empty()) << "no leader: see " << dir;
  phase("a leader was elected");

  // cafraftctl: put, get, a missing key, cas both ways.
  auto put = ctl(ids, {"put", "greeting", "hello"});
  EXPECT_EQ(put.code, 0) << put.out;
  auto get = ctl(ids, {"get", "greeting"});
  EXPECT_EQ(get.code, 0);
  EXPECT_EQ(get.out, "hello\n");
  auto missing = ctl(ids, {"get", "nope"});
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.out.find("key not found"), std::string::npos);
  auto cas_bad = ctl(ids, {"cas", "greeting", "hi", "bye"});
  EXPECT_EQ(cas_bad.code, 2);
  EXPECT_NE(cas_bad.out.find("compare failed"), std::string::npos);
  EXPECT_NE(cas_bad.out.find("hello"), std::string::npos);
  EXPECT_EQ(ctl(ids, {"cas", "greeting", "hello", "bye"}).code, 0);

  // 500 writes through a client of the cluster.
  process_config cfg;
  caf::actor_system sys{cfg};
  std::map<std::string, std::string> acknowledged;
  {
    cafraft::remote_client client{sys, addresses(ids), cafraft::tls_files{}, 10s};
    for (int i = 0; i < 500; ++i) {
      pb::PutRequest req;
      req.set_key("k" + std::to_string(i));
      req.set_value("v" + std::to_string(i));
      auto w = client.call<pb::WriteResponse>(req);
      ASSERT_TRUE(w) << "write " << i << ": " << cafraft::render(w.error());
      acknowledged[req.key()] = req.value();
    }
    phase("500 writes acknowledged");
    // A watcher of the dialer connected to the leader: it hears of the broken connection as
    // soon as the process is gone (actors/peer.hpp), not at some request's timeout.
    auto dialer = client.connect(address(first), 2000ms);
    ASSERT_TRUE(dialer);
    auto watching = std::make_shared<std::atomic<bool>>(false);
    auto told_at = std::make_shared<std::atomic<int64_t>>(0);
    auto watcher = sys.spawn([=](caf::event_based_actor* self) -> caf::behavior {
      self->send(dialer, cafraft::connection_watch_atom::value);
      // Answered after the watch was taken: one sender's messages arrive in order.
      self->request(dialer, caf::infinite, cafraft::peer_stats_atom::value)
          .then([=](uint64_t, uint64_t, bool) { *watching = true; });
      return {[=](cafraft::connection_lost_atom, const caf::actor& via) {
        if (via == dialer)
          *told_at = steady::now().time_since_epoch().count();
      }};
    });
    ASSERT_TRUE(eventually(2s, [&] { return watching->load(); }));
    // kill -9 the leader; another is elected and writes go on.
    auto killed_at = steady::now();
    ::kill(pids[first], SIGKILL);
    EXPECT_EQ(wait_exit(pids[first]), 128 + SIGKILL);
    pids[first] = 0;
    ASSERT_TRUE(eventually(2s, [&] { return told_at->load() != 0; }))
        << "the dialer's watcher was not told of the broken connection";
    std::printf("[process] the watcher heard of the lost connection %lld ms after the kill\n",
                static_cast<long long>(
                    std::chrono::duration_cast<std::chrono::milliseconds>(
                        steady::time_point{steady::duration{told_at->load()}} - killed_at)
                        .count()));
    caf::anon_send_exit(watcher, caf::exit_reason::user_shutdown);
    std::vector<std::string> rest;
    for (auto& id : ids)
      if (id != first)
        rest.push_back(id);
    auto second = leader(rest, first);
    ASSERT_FALSE(second.empty());
    EXPECT_NE(second, first);
    // The killed member is listed, with its error, and the list says the cluster is unhealthy.
    auto list = ctl(ids, {"member", "list"});
    EXPECT_EQ(list.code, 2) << list.out;
    auto row = list.out.find(first + "  ");
    ASSERT_NE(row, std::string::npos) << list.out;
    EXPECT_NE(list.out.find("unreachable", row), std::string::npos) << list.out;
    for (int i = 500; i < 600; ++i) {
      pb::PutRequest req;
      req.set_key("k" + std::to_string(i));
      req.set_value("v" + std::to_string(i));
      auto w = client.call<pb::WriteResponse>(req);
      ASSERT_TRUE(w) << "write " << i << " after the kill: " << cafraft::render(w.error());
      acknowledged[req.key()] = req.value();
    }
  }
  phase("the old leader was killed; 100 more writes acknowledged");
  // The killed node restarts from its data (membership flags are ignored) and catches up.
  start_node(first, {"--initial-cluster", initial, "--insecure"});
  // A fourth node joins, and one of the first three leaves.
  start_node("a4", {"--join", endpoints(ids), "--insecure"});
  std::vector<std::string> all{"n1", "n2", "n3", "a4"};
  bool four = false;
  for (int i = 0; i < 100 && !four; ++i) {
    auto list = ctl(all, {"member", "list"});
    four = list.code == 0 && list.out.find("a4") != std::string::npos &&
           list.out.find("learner") == std::string::npos;
    if (!four)
      std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(four) << ctl(all, {"member", "list"}).out;
  phase("a4 (an id that sorts first: it dials the others) joined and was promoted");
  auto cur = leader(all);
  auto leaving = cur == "n2" ? std::string{"n3"} : std::string{"n2"};
  auto removed = ctl(all, {"member", "remove", leaving});
  ASSERT_EQ(removed.code, 0) << removed.out;
  EXPECT_EQ(wait_exit(pids[leaving], 10s), 2) << "the removed node did not stop by itself";
  pids[leaving] = 0;
  std::vector<std::string> members;
  for (auto& id : all)
    if (id != leaving)
      members.push_back(id);
  auto list = ctl(members, {"member", "list"});
  EXPECT_EQ(list.code, 0) << list.out;
  EXPECT_EQ(list.out.find(leaving + " "), std::string::npos) << list.out;
  phase("a member left and stopped");
  // An operator adds n5 first; the node then starts with --join and claims the member.
  ports["n5"] = free_port();
  auto added = ctl(members, {"member", "add", "n5", address("n5")});
  ASSERT_EQ(added.code, 0) << added.out;
  EXPECT_NE(added.out.find("n5"), std::string::npos) << added.out;
  start_node("n5", {"--join", endpoints(members), "--insecure"});
  bool five = false;
  for (int i = 0; i < 100 && !five; ++i) {
    auto l = ctl(members, {"-w", "json", "member", "list"});
    five = l.code == 0 && l.out.find("\"id\": \"n5\"") != std::string::npos &&
           l.out.find("\"voter\": false") == std::string::npos;
    if (!five)
      std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(five) << ctl(members, {"member", "list"}).out;
  members.push_back("n5");
  phase("an operator added n5, which joined and was promoted");
  // Every acknowledged write is readable from every remaining node.
  cafraft::remote_client reader{sys, {}};
  for (auto& id : members) {
    bool caught_up = false;
    for (int attempt = 0; attempt < 100 && !caught_up; ++attempt) {
      pb::GetRequest req;
      req.set_key("k599");
      req.set_stale(true);
      auto r = reader.ask<pb::GetResponse>(address(id), req, 1s);
      caught_up = r && r->found();
      if (!caught_up)
        std::this_thread::sleep_for(100ms);
    }
    ASSERT_TRUE(caught_up) << id << " did not catch up";
    size_t wrong = 0;
    for (auto& [k, v] : acknowledged) {
      pb::GetRequest req;
      req.set_key(k);
      req.set_stale(true);
      auto r = reader.ask<pb::GetResponse>(address(id), req, 1s);
      wrong += !r || !r->found() || r->value() != v;
    }
    EXPECT_EQ(wrong, 0u) << id << " lacks acknowledged writes";
  }
  phase("every acknowledged write read back from every node");
  // SIGTERM stops a node cleanly.
  ::kill(pids["a4"], SIGTERM);
  EXPECT_EQ(wait_exit(pids["a4"]), 0);
  pids["a4"] = 0;
}

TEST_F(ProcessCluster, BadFlagsExitWithOneAndTouchNothing) {
  ports["n1"] = free_port();
  auto data = dir + "/n1";
  auto cases = std::vector<std::vector<std::string>>{
      {"--insecure"},                                        // no membership flag
      {"--initial-cluster", "n1=bad-address", "--insecure"}, // bad member address
      {"--initial-cluster", "n2=127.0.0.1:1", "--insecure"}, // does not name itself
      {"--initial-cluster", "n1=" + address("n1")},          // neither TLS nor --insecure
      {"--initial-cluster", "n1=" + address("n1"), "--tls-cert", "/nope", "--tls-key", "/nope",
       "--tls-ca", "/nope"},         // unreadable TLS files
      {"--join", "x", "--insecure"}, // bad join address
  };
  for (auto& extra : cases) {
    auto r = run(node_args("n1", extra), dir);
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_NE(r.out.find("error"), std::string::npos) << r.out;
    EXPECT_FALSE(fs::exists(data)) << "a bad flag created the data directory";
  }
  // Options from a config file, and from CAFRAFT_* environment variables.
  {
    std::ofstream conf{dir + "/node.conf"};
    conf << "id = \"n1\"\ndata-dir = \"" << data << "\"\nlisten = \"from-the-file\"\n";
  }
  auto from_file =
      run({bin_dir + "/cafraft-node", "--config", dir + "/node.conf", "--insecure"}, dir);
  EXPECT_EQ(from_file.code, 1);
  EXPECT_NE(from_file.out.find("from-the-file"), std::string::npos) << from_file.out;
  ::setenv("CAFRAFT_LISTEN", "from-the-environment", 1);
  auto from_env =
      run({bin_dir + "/cafraft-node", "--id", "n1", "--data-dir", data, "--insecure"}, dir);
  ::unsetenv("CAFRAFT_LISTEN");
  EXPECT_EQ(from_env.code, 1);
  EXPECT_NE(from_env.out.find("from-the-environment"), std::string::npos) << from_env.out;
  EXPECT_FALSE(fs::exists(data));
  {
    // A port in use: refused before the data directory is made.
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(ports["n1"]);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ::listen(fd, 1);
    auto busy =
        run(node_args("n1", {"--initial-cluster", "n1=" + address("n1"), "--insecure"}), dir);
    ::close(fd);
    EXPECT_EQ(busy.code, 1) << busy.out;
    EXPECT_NE(busy.out.find("cannot listen"), std::string::npos) << busy.out;
    EXPECT_FALSE(fs::exists(data));
  }
  auto bad_tls = run({bin_dir + "/cafraftctl", "--endpoints", "127.0.0.1:1", "--tls-cert", "/nope",
                      "--tls-key", "/nope", "--tls-ca", "/nope", "get", "k"},
                     dir);
  EXPECT_EQ(bad_tls.code, 1) << bad_tls.out;
  auto help = run({bin_dir + "/cafraft-node", "--help"}, dir);
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("--initial-cluster"), std::string::npos);
  auto usage = run({bin_dir + "/cafraftctl", "--endpoints", "x", "get", "k"}, dir);
  EXPECT_EQ(usage.code, 1);
  auto nobody = run(
      {bin_dir + "/cafraftctl", "--endpoints", "127.0.0.1:1", "--timeout-ms", "500", "get", "k"},
      dir);
  EXPECT_EQ(nobody.code, 3) << nobody.out;
}

void make_ca(const std::string& dir, const std::string& ca) {
  auto cmd = "cd " + dir + " && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=" + ca +
             " -keyout " + ca + ".key -out " + ca + ".pem >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
}

void make_cert(const std::string& dir, const std::string& ca, const std::string& name) {
  auto cmd = "cd " + dir + " && openssl req -newkey rsa:2048 -nodes -subj /CN=" + name +
             " -keyout " + name + ".key -out " + name + ".csr >/dev/null 2>&1 && openssl x509 " +
             "-req -in " + name + ".csr -CA " + ca + ".pem -CAkey " + ca +
             ".key -CAcreateserial -days 2 -out " + name + ".pem >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
}

TEST_F(ProcessCluster, MutualTlsRefusesAForeignCertificate) {
  make_ca(dir, "ca");
  make_ca(dir, "rogue-ca");
  for (auto n : {"n1", "n2", "n3", "client"})
    make_cert(dir, "ca", n);
  make_cert(dir, "rogue-ca", "rogue");
  std::vector<std::string> ids{"n1", "n2", "n3"};
  auto initial = initial_cluster(ids);
  auto tls = [&](const std::string& name, const std::string& ca) {
    return std::vector<std::string>{"--tls-cert", dir + "/" + name + ".pem",
                                    "--tls-key",  dir + "/" + name + ".key",
                                    "--tls-ca",   dir + "/" + ca + ".pem"};
  };
  auto admin = free_port();
  for (auto& id : ids) {
    auto extra = tls(id, "ca");
    extra.insert(extra.begin(), {"--initial-cluster", initial});
    if (id == "n1")
      extra.insert(extra.end(), {"--admin", "127.0.0.1:" + std::to_string(admin)});
    start_node(id, extra);
  }
  auto client = tls("client", "ca");
  bool up = false;
  for (int i = 0; i < 100 && !up; ++i) {
    up = ctl(ids, {"put", "k", "v"}, client).code == 0;
    if (!up)
      std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(up) << "the TLS cluster took no write: see " << dir;
  // The admin endpoints serve HTTPS to a client certificate of the cluster's CA, and nothing
  // to plain HTTP or to a client without a certificate.
  {
    httplib::SSLClient https{"127.0.0.1", admin, dir + "/client.pem", dir + "/client.key"};
    https.set_ca_cert_path((dir + "/ca.pem").c_str());
    https.enable_server_certificate_verification(false); // the name is n1's, not 127.0.0.1
    auto live = https.Get("/livez");
    ASSERT_TRUE(live) << "no HTTPS admin endpoint: " << httplib::to_string(live.error());
    EXPECT_EQ(live->status, 200);
    auto metrics = https.Get("/metrics");
    ASSERT_TRUE(metrics);
    EXPECT_NE(metrics->body.find("cafraft_"), std::string::npos);
    // The dashboard's sampler reaches the other members with n1's certificate: all three show.
    bool three = false;
    std::string cluster;
    for (int i = 0; i < 50 && !three; ++i) {
      auto c = https.Get("/v1/cluster");
      cluster = c ? c->body : httplib::to_string(c.error());
      three = c && c->status == 200 && count_of(cluster, "\"reachable\":true") == 3;
      if (!three)
        std::this_thread::sleep_for(100ms);
    }
    EXPECT_TRUE(three) << cluster;
    auto page = https.Get("/");
    ASSERT_TRUE(page);
    EXPECT_NE(page->body.find("<title>cafraft dashboard</title>"), std::string::npos);
    httplib::Client plain{"127.0.0.1", admin};
    plain.set_connection_timeout(2);
    auto refused_plain = plain.Get("/livez");
    EXPECT_TRUE(!refused_plain || refused_plain->status != 200) << "plain HTTP was served";
    httplib::SSLClient anonymous{"127.0.0.1", admin};
    anonymous.enable_server_certificate_verification(false);
    auto refused_anonymous = anonymous.Get("/livez");
    EXPECT_FALSE(refused_anonymous) << "served a client without a certificate";
  }
  auto get = ctl(ids, {"get", "k"}, client);
  EXPECT_EQ(get.code, 0) << get.out;
  EXPECT_EQ(get.out, "v\n");
  // A client whose certificate comes from another CA is refused by every node.
  auto rogue = ctl(ids, {"--timeout-ms", "1500", "get", "k"}, tls("rogue", "ca"));
  EXPECT_EQ(rogue.code, 3) << rogue.out;
  // So is a node: it never gets in.
  auto extra = tls("rogue", "ca");
  extra.insert(extra.begin(), {"--join", endpoints(ids), "--log-level", "debug"});
  start_node("n9", extra);
  bool refused = false; // it tried, and its connection was refused
  for (int i = 0; i < 100 && !refused; ++i) {
    std::ifstream in{dir + "/n9.log"};
    std::stringstream log;
    log << in.rdbuf();
    refused = log.str().find("cannot reach") != std::string::npos;
    if (!refused)
      std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(refused) << "n9 never tried to connect";
  // Every member answers (a TLS handshake can take a while on a loaded machine), and n9 is
  // not among them.
  run_result list;
  for (int i = 0; i < 20; ++i) {
    list = ctl(ids, {"member", "list"}, client);
    if (list.code == 0)
      break;
    std::this_thread::sleep_for(250ms);
  }
  EXPECT_EQ(list.code, 0) << list.out;
  EXPECT_EQ(list.out.find("n9"), std::string::npos) << list.out;
}

// Client certificates from a CA of their own (--tls-client-ca): they serve clients (cafraftctl,
// the admin endpoints), and can never act as a node, even one that names a member (n3); the
// nodes' certificates come from the cluster's CA alone.
TEST_F(ProcessCluster, CertificatesOfTheClientCaAreClientsOnly) {
  make_ca(dir, "ca");
  make_ca(dir, "client-ca");
  for (auto n : {"n1", "n2", "n3"})
    make_cert(dir, "ca", n);
  make_cert(dir, "client-ca", "ops");
  // (A second key for the name n3, from the client CA: files of their own.)
  auto cmd = "cd " + dir + " && mkdir fake && cd fake && cp ../client-ca.* . && " +
             "openssl req -newkey rsa:2048 -nodes -subj /CN=n3 -keyout n3.key -out n3.csr " +
             ">/dev/null 2>&1 && openssl x509 -req -in n3.csr -CA client-ca.pem -CAkey " +
             "client-ca.key -CAcreateserial -days 2 -out n3.pem >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::vector<std::string> ids{"n1", "n2"};
  auto initial = initial_cluster({"n1", "n2", "n3"});
  auto node_tls = [&](const std::string& cert_dir, const std::string& id) {
    return std::vector<std::string>{"--initial-cluster", initial,
                                    "--tls-cert",        cert_dir + "/" + id + ".pem",
                                    "--tls-key",         cert_dir + "/" + id + ".key",
                                    "--tls-ca",          dir + "/ca.pem",
                                    "--tls-client-ca",   dir + "/client-ca.pem"};
  };
  auto admin = free_port();
  for (auto& id : ids) {
    auto extra = node_tls(dir, id);
    if (id == "n1")
      extra.insert(extra.end(), {"--admin", "127.0.0.1:" + std::to_string(admin)});
    start_node(id, extra);
  }
  // n3 starts with a certificate of the client CA that names n3: refused by n1 and n2.
  auto fake = node_tls(dir + "/fake", "n3");
  fake.insert(fake.end(), {"--log-level", "debug"});
  start_node("n3", fake);
  std::vector<std::string> ops{"--tls-cert",     dir + "/ops.pem", "--tls-key",
                               dir + "/ops.key", "--tls-ca",       dir + "/ca.pem"};
  // n1 and n2 elect a leader and take writes from ops, a client of the client CA.
  bool up = false;
  for (int i = 0; i < 100 && !up; ++i) {
    up = ctl(ids, {"put", "k", "v"}, ops).code == 0;
    if (!up)
      std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(up) << "no write from a client of the client CA: see " << dir;
  // ... and the admin endpoints serve it.
  httplib::SSLClient https{"127.0.0.1", admin, dir + "/ops.pem", dir + "/ops.key"};
  https.enable_server_certificate_verification(false);
  auto live = https.Get("/livez");
  ASSERT_TRUE(live) << httplib::to_string(live.error());
  EXPECT_EQ(live->status, 200);
  // The fake n3 never got in: both refused its certificate as a node, and said why.
  bool logged = false;
  for (int i = 0; i < 50 && !logged; ++i) {
    for (auto& id : ids) {
      std::ifstream in{dir + "/" + id + ".log"};
      std::stringstream log;
      log << in.rdbuf();
      // (n1 and n2 dial n3: the refusal is theirs, on n3's answer.)
      logged = logged || log.str().find("the node there shows a client certificate (of the "
                                        "client CA)") != std::string::npos;
    }
    if (!logged)
      std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(logged) << "no refusal of the fake n3 logged: see " << dir;
  // A node's certificate changes the membership only for the node it names: n1's cannot
  // remove n2 (an operator uses the client CA's).
  std::vector<std::string> as_n1{"--tls-cert",    dir + "/n1.pem", "--tls-key",
                                 dir + "/n1.key", "--tls-ca",      dir + "/ca.pem"};
  auto remove = ctl(ids, {"--timeout-ms", "2000", "member", "remove", "n2"}, as_n1);
  EXPECT_NE(remove.code, 0) << remove.out;
  EXPECT_NE(remove.out.find("changes the membership only for the node it names"), std::string::npos)
      << remove.out;
  auto st = ctl(ids, {"-w", "json", "member", "list"}, ops);
  EXPECT_EQ(st.code, 2) << st.out; // n3 is a member of the configuration, and unreachable
  EXPECT_NE(st.out.find("\"unreachable\""), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("\"n2\""), std::string::npos) << "n2 was removed: " << st.out;
}

} // namespace
} // namespace cafraft::test
