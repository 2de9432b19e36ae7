// RedisBroker through Redis Sentinel: a master, a replica and three sentinels of this test's
// own (real redis-server processes in a temporary directory); the master is killed mid-run
// and the broker follows the new one without losing a ticket.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "broker/redis/redis_broker.h"
#include "broker/redis/redis_conn.h"
#include "core/test_util.h"

namespace sluice {
namespace {

using std::chrono::milliseconds;

int FreePort() {
  // Ports from the kernel's ephemeral range are taken by connections; ask for one.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

class Server {
 public:
  Server(const std::string& dir, const std::string& name, const std::string& conf, bool sentinel) {
    // A directory each: two servers in one would share an append-only file.
    std::string home = dir + "/" + name;
    std::filesystem::create_directories(home);
    std::string path = home + "/redis.conf";
    std::ofstream(path) << conf << "dir " << home << "\nlogfile " << home << "/redis.log\n";
    pid_ = fork();
    if (pid_ == 0) {
      if (sentinel) {
        execlp("redis-server", "redis-server", path.c_str(), "--sentinel", nullptr);
      } else {
        execlp("redis-server", "redis-server", path.c_str(), nullptr);
      }
      _exit(127);
    }
  }
  ~Server() { Kill(); }
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = 0;
  }

 private:
  pid_t pid_ = 0;
};

Result<redis::Reply> Ask(int port, const std::vector<std::string>& argv) {
  redis::Endpoint e;
  e.port = port;
  auto c = redis::Conn::Connect(e, 2000);
  if (!c.ok()) return c.status();
  return c->Command(argv);
}

bool WaitFor(const std::function<bool()>& ok, int seconds) {
  for (int i = 0; i < seconds * 10; ++i) {
    if (ok()) return true;
    std::this_thread::sleep_for(milliseconds(100));
  }
  return false;
}

int MasterPort(int sentinel) {
  auto r = Ask(sentinel, {"SENTINEL", "get-master-addr-by-name", "m"});
  if (!r.ok() || r->elements.size() != 2) return 0;
  return static_cast<int>(r->elements[1].Int(0));
}

TEST(RedisSentinelTest, TheBrokerFollowsAFailoverAndLosesNoTicket) {
  testing::TempDir dir;
  int master_port = FreePort(), replica_port = FreePort();
  std::string common = "bind 127.0.0.1\nprotected-mode no\nsave \"\"\nappendonly yes\n";
  Server master(dir.path(), "master", common + "port " + std::to_string(master_port) + "\n", false);
  Server replica(dir.path(), "replica",
                 common + "port " + std::to_string(replica_port) + "\nreplicaof 127.0.0.1 " +
                     std::to_string(master_port) + "\n",
                 false);
  std::vector<int> sentinel_ports;
  std::vector<std::unique_ptr<Server>> sentinels;
  for (int i = 0; i < 3; ++i) {
    int port = FreePort();
    sentinel_ports.push_back(port);
    sentinels.push_back(std::make_unique<Server>(
        dir.path(), "sentinel" + std::to_string(i),
        "bind 127.0.0.1\nprotected-mode no\nport " + std::to_string(port) +
            "\nsentinel monitor m 127.0.0.1 " + std::to_string(master_port) +
            " 2\nsentinel down-after-milliseconds m 1000\nsentinel failover-timeout m 5000\n",
        true));
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        auto r = Ask(replica_port, {"INFO", "replication"});
        return r.ok() && r->str.find("master_link_status:up") != std::string::npos;
      },
      30))
      << "the replica did not sync";
  // A failover needs sentinels that know each other and the replica (learnt from the
  // master's hello channel and INFO, every few seconds): wait for both.
  auto ready = [&](int port) {
    auto r = Ask(port, {"SENTINEL", "MASTER", "m"});
    if (!r.ok()) return false;
    int64_t others = -1, replicas = -1;
    for (size_t i = 0; i + 1 < r->elements.size(); i += 2) {
      if (r->elements[i].str == "num-other-sentinels") others = r->elements[i + 1].Int(-1);
      if (r->elements[i].str == "num-slaves") replicas = r->elements[i + 1].Int(-1);
    }
    return others == 2 && replicas == 1;
  };
  ASSERT_TRUE(WaitFor(
      [&] {
        return ready(sentinel_ports[0]) && ready(sentinel_ports[1]) && ready(sentinel_ports[2]);
      },
      60))
      << "the sentinels did not find each other and the replica";

  RedisBrokerOptions o;
  o.url = "redis+sentinel://127.0.0.1:" + std::to_string(sentinel_ports[0]) +
          ",127.0.0.1:" + std::to_string(sentinel_ports[1]) +
          ",127.0.0.1:" + std::to_string(sentinel_ports[2]) + "/m";
  o.prefix = "failover";
  o.shards = 2;
  o.lease_ms = 2000;
  o.timeout_ms = 1000;
  auto broker = RedisBroker::Open(o, Clock::Real());
  ASSERT_TRUE(broker.ok()) << broker.status().ToString();
  std::set<int64_t> seen;
  for (int i = 1; i <= 100; ++i) (*broker)->Push({i, 0, i, 0});
  for (int i = 0; i < 50; ++i) {
    auto t = (*broker)->Pop(milliseconds(2000));
    ASSERT_TRUE(t.has_value());
    seen.insert(t->job_id);
    (*broker)->Ack(*t);
  }
  // Everything so far is on the replica before the master dies.
  ASSERT_TRUE(Ask(master_port, {"WAIT", "1", "5000"}).ok());
  master.Kill();
  ASSERT_TRUE(WaitFor([&] { return MasterPort(sentinel_ports[0]) == replica_port; }, 60))
      << "no failover";
  for (int i = 101; i <= 150; ++i) (*broker)->Push({i, 0, i, 0});
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (seen.size() < 150 && std::chrono::steady_clock::now() < deadline) {
    auto t = (*broker)->Pop(milliseconds(1000));
    if (!t) continue;
    seen.insert(t->job_id);
    (*broker)->Ack(*t);
  }
  EXPECT_EQ(seen.size(), 150u);
  EXPECT_EQ((*broker)->PendingCount(), 0u);
  (*broker)->Close();
}

}  // namespace
}  // namespace sluice
