// The web dashboard of cafraft-node (apps/dashboard.hpp) in a real browser: Debian's Chromium,
// headless, renders the page of a running cluster; the test reads the rendered DOM (members,
// roles, health, actor trees, events) and takes a screenshot (ctest label "process").
#include <regex>

#include <nlohmann/json.hpp>

#include "process_fixture.hpp"

namespace cafraft::test {
namespace {

class Dashboard : public ProcessCluster {
protected:
  // Chromium, headless, on the page at `url`: its DOM once the page's script ran for `budget`
  // of virtual time (--dump-dom), or, with `png`, a screenshot written there.
  run_result browse(const std::string& url, const std::string& png = {}) {
    std::vector<std::string> a{"/usr/bin/chromium",
                               "--headless",
                               "--no-sandbox",
                               "--disable-gpu",
                               "--disable-quic",
                               "--no-first-run",
                               "--disable-background-networking",
                               "--disable-component-update",
                               "--disable-sync",
                               "--user-data-dir=" + dir + "/chromium",
                               "--virtual-time-budget=4000",
                               "--window-size=1400,1300",
                               "--hide-scrollbars"};
    a.push_back(png.empty() ? "--dump-dom" : "--screenshot=" + png);
    a.push_back(url);
    return run(a, dir);
  }

  // /v1/cluster, once `pred` holds of it (null JSON after 10 s).
  template <class Pred> nlohmann::json cluster_when(httplib::Client& http, Pred pred) {
    nlohmann::json last;
    for (int i = 0; i < 100; ++i) {
      if (auto r = http.Get("/v1/cluster"); r && r->status == 200) {
        last = nlohmann::json::parse(r->body, nullptr, false);
        if (!last.is_discarded() && last.contains("members") && pred(last))
          return last;
      }
      std::this_thread::sleep_for(100ms);
    }
    ADD_FAILURE() << "/v1/cluster never showed what the test waits for; last: " << last.dump();
    return {};
  }
};

TEST_F(Dashboard, ShowsMembersActorsAndEventsInAHeadlessBrowser) {
  ASSERT_TRUE(fs::exists("/usr/bin/chromium"))
      << "Debian's chromium package is missing: scripts/deps installs it";
  std::vector<std::string> ids{"n1", "n2", "n3"};
  auto initial = initial_cluster(ids);
  auto admin = free_port();
  for (auto& id : ids) {
    std::vector<std::string> extra{"--initial-cluster", initial, "--insecure"};
    if (id == "n1")
      extra.insert(extra.end(), {"--admin", "127.0.0.1:" + std::to_string(admin)});
    start_node(id, extra);
  }
  auto lead = leader(ids);
  ASSERT_FALSE(lead.empty());
  for (int i = 0; i < 20; ++i)
    ASSERT_EQ(ctl(ids, {"put", "k" + std::to_string(i), "v"}).code, 0);
  httplib::Client http{"127.0.0.1", admin};
  http.set_connection_timeout(2);
  auto url = "http://127.0.0.1:" + std::to_string(admin) + "/";

  // The JSON: every member reachable, one leader, and its actors once the page is watched.
  auto all_up = [](const nlohmann::json& c) {
    int reachable = 0;
    for (auto& m : c["members"])
      reachable += m.value("reachable", false) && !m["actors"].empty();
    return reachable == 3 && !c.value("leader", std::string{}).empty();
  };
  auto c = cluster_when(http, all_up);
  ASSERT_FALSE(c.is_null());
  EXPECT_EQ(c["served_by"], "n1");
  EXPECT_EQ(c["leader"], lead);

  // The page, rendered: three members, one leader, the actor trees, the events.
  auto page = browse(url);
  ASSERT_EQ(page.code, 0) << page.out;
  EXPECT_NE(page.out.find("data-ready=\"1\""), std::string::npos)
      << "the page never rendered a sample: " << page.out;
  EXPECT_EQ(count_of(page.out, "<tr data-member="), 3u) << page.out;
  EXPECT_EQ(count_of(page.out, "data-role=\"leader\""), 1u) << page.out;
  EXPECT_NE(page.out.find("data-member=\"" + lead + "\" data-role=\"leader\""), std::string::npos);
  EXPECT_EQ(count_of(page.out, "data-health=\"healthy\""), 3u) << page.out;
  for (auto& id : ids)
    for (auto actor : {"", "/storage", "/state_machine", "/change_request"})
      EXPECT_NE(page.out.find("data-actor=\"" + id + actor + "\""), std::string::npos)
          << id << actor << " missing from the actor trees";
  EXPECT_NE(page.out.find("data-actor=\"" + lead + "/leader\""), std::string::npos);
  EXPECT_NE(page.out.find(lead + " leads term"), std::string::npos) << "no leader event";
  // The charts: writes per second, and the fsync latency of a member (the writes above were
  // fsynced while the dashboard sampled).
  EXPECT_NE(page.out.find("data-series=\"writes\""), std::string::npos) << "no writes chart";
  EXPECT_TRUE(std::regex_search(page.out, std::regex{"data-series=\"n[123]\""}))
      << "no fsync chart";
  EXPECT_EQ(page.out.find("class=\"down\" id=\"connection\""), std::string::npos)
      << "the page lost its endpoint";
  EXPECT_NE(page.out.find(">updated "), std::string::npos) << "the page never updated";

  // A screenshot (the README shows one).
  auto png = dir + "/dashboard.png";
  auto shot = browse(url, png);
  EXPECT_EQ(shot.code, 0) << shot.out;
  std::ifstream in{png, std::ios::binary};
  std::string bytes{std::istreambuf_iterator<char>{in}, {}};
  EXPECT_GT(bytes.size(), 20000u) << "a screenshot of a blank page?";
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));

  // A member goes down: the page shows it unreachable, and the event.
  auto gone = lead == "n1" ? std::string{"n2"} : lead;
  ::kill(pids[gone], SIGKILL);
  wait_exit(pids[gone]);
  pids[gone] = -1;
  c = cluster_when(http, [&](const nlohmann::json& now) {
    for (auto& m : now["members"])
      if (m["id"] == gone)
        return !m.value("reachable", true);
    return false;
  });
  ASSERT_FALSE(c.is_null());
  page = browse(url);
  EXPECT_NE(page.out.find("data-member=\"" + gone + "\" data-role=\"unreachable\""),
            std::string::npos)
      << page.out;
  EXPECT_NE(page.out.find(gone + " lost: "), std::string::npos) << "no event for " << gone;
  EXPECT_EQ(count_of(page.out, "<tr data-member="), 3u);
  // The others elect a leader again (the one that died led): the page shows the new one.
  std::vector<std::string> rest;
  for (auto& id : ids)
    if (id != gone)
      rest.push_back(id);
  ASSERT_FALSE(leader(rest).empty());
  c = cluster_when(http, [&](const nlohmann::json& now) {
    return !now.value("leader", std::string{}).empty() && now["leader"] != gone;
  });
  page = browse(url);
  EXPECT_EQ(count_of(page.out, "data-role=\"leader\""), 1u) << page.out;

  // The history behind the charts and the timeline.
  auto h = http.Get("/v1/history");
  ASSERT_TRUE(h);
  auto history = nlohmann::json::parse(h->body, nullptr, false);
  ASSERT_FALSE(history.is_discarded());
  EXPECT_GE(history["points"].size(), 2u);
  bool lost = false;
  for (auto& e : history["events"])
    lost = lost || e.value("text", std::string{}).find(gone + " lost") == 0;
  EXPECT_TRUE(lost) << history.dump();
}

} // namespace
} // namespace cafraft::test
