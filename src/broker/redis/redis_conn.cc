// hiredis behind redis_conn.h.
#include "broker/redis/redis_conn.h"

#include <hiredis/hiredis.h>

#include <cstdlib>
#include <cstring>

#include "core/percent.h"

namespace sluice::redis {
namespace {

Result<int> Number(const std::string& s, int lo, int hi, const std::string& what) {
  if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) {
    return Status::InvalidArgument("bad " + what + " '" + s + "' in the Redis URL");
  }
  int v = std::atoi(s.c_str());
  if (v < lo || v > hi) {
    return Status::InvalidArgument(what + " " + s + " is out of range in the Redis URL");
  }
  return v;
}

// "HOST[:PORT]" (IPv6 as "[::1]:PORT").
Result<std::pair<std::string, int>> HostPort(const std::string& s, int default_port) {
  std::string host = s;
  std::string port;
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find(']');
    if (close == std::string::npos) return Status::InvalidArgument("bad host in the Redis URL");
    host = s.substr(1, close - 1);
    if (close + 1 < s.size()) {
      if (s[close + 1] != ':') return Status::InvalidArgument("bad host in the Redis URL");
      port = s.substr(close + 2);
    }
  } else if (size_t colon = s.rfind(':'); colon != std::string::npos) {
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  if (host.empty()) return Status::InvalidArgument("the Redis URL has no host");
  int p = default_port;
  if (!port.empty()) {
    auto n = Number(port, 1, 65535, "port");
    if (!n.ok()) return n.status();
    p = *n;
  }
  return std::make_pair(host, p);
}

// "[[USER]:PASSWORD@]REST": fills user and password, returns REST.
Result<std::string> Credentials(const std::string& s, Endpoint* e) {
  size_t at = s.rfind('@');
  if (at == std::string::npos) return s;
  std::string cred = s.substr(0, at);
  size_t colon = cred.find(':');
  auto user = PercentDecode(cred.substr(0, colon), false, "the Redis URL");
  if (!user.ok()) return user.status();
  if (colon == std::string::npos) {
    // "redis://PASSWORD@host" is how some clients write a password alone.
    e->password = *user;
    return s.substr(at + 1);
  }
  auto pass = PercentDecode(cred.substr(colon + 1), false, "the Redis URL");
  if (!pass.ok()) return pass.status();
  e->username = *user;
  e->password = *pass;
  return s.substr(at + 1);
}

// "?db=N&password=P" of unix:// URLs.
Status Query(const std::string& q, Endpoint* e) {
  size_t i = 0;
  while (i < q.size()) {
    size_t amp = q.find('&', i);
    std::string pair = q.substr(i, amp == std::string::npos ? std::string::npos : amp - i);
    i = amp == std::string::npos ? q.size() : amp + 1;
    size_t eq = pair.find('=');
    std::string key = pair.substr(0, eq);
    auto value =
        PercentDecode(eq == std::string::npos ? "" : pair.substr(eq + 1), true, "the Redis URL");
    if (!value.ok()) return value.status();
    if (key == "db") {
      auto n = Number(*value, 0, 1 << 20, "database number");
      if (!n.ok()) return n.status();
      e->db = *n;
    } else if (key == "password") {
      e->password = *value;
    } else if (key == "username" || key == "user") {
      e->username = *value;
    } else {
      return Status::InvalidArgument("unknown option '" + key + "' in the Redis URL");
    }
  }
  return Status::Ok();
}

Reply Copy(const redisReply* r) {
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Reply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(Copy(r->element[i]));
      break;
    default:
      break;
  }
  return out;
}

struct timeval Tv(int ms) {
  struct timeval tv;
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  return tv;
}

}  // namespace

Result<Endpoint> ParseUrl(const std::string& url) {
  Endpoint e;
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) {
    return Status::InvalidArgument(
        "give the broker as redis://[:PASSWORD@]HOST:PORT/DB, unix:///PATH?db=N or "
        "redis+sentinel://H1:P1,H2:P2/MASTER/DB");
  }
  std::string scheme = url.substr(0, scheme_end);
  std::string rest = url.substr(scheme_end + 3);
  if (scheme == "rediss") {
    return Status::InvalidArgument(
        "rediss:// (Redis over TLS) is not supported; use redis:// "
        "on a trusted network or a unix socket");
  }
  if (scheme == "unix") {
    size_t q = rest.find('?');
    std::string before = rest.substr(0, q);
    auto path = Credentials(before, &e);
    if (!path.ok()) return path.status();
    if (path->empty() || (*path)[0] != '/') {
      return Status::InvalidArgument(
          "unix:// needs an absolute socket path (unix:///run/redis.sock)");
    }
    e.unix_path = *path;
    if (q != std::string::npos) SLUICE_RETURN_IF_ERROR(Query(rest.substr(q + 1), &e));
    return e;
  }
  if (scheme != "redis" && scheme != "redis+sentinel") {
    return Status::InvalidArgument("unsupported broker scheme '" + scheme + "://'");
  }
  size_t q = rest.find('?');
  std::string query = q == std::string::npos ? "" : rest.substr(q + 1);
  rest = rest.substr(0, q);
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  std::string path = slash == std::string::npos ? "" : rest.substr(slash + 1);
  auto hosts = Credentials(authority, &e);
  if (!hosts.ok()) return hosts.status();
  if (scheme == "redis") {
    auto hp = HostPort(*hosts, 6379);
    if (!hp.ok()) return hp.status();
    e.host = hp->first;
    e.port = hp->second;
    if (!path.empty()) {
      auto db = Number(path, 0, 1 << 20, "database number");
      if (!db.ok()) return db.status();
      e.db = *db;
    }
  } else {
    size_t i = 0;
    while (i <= hosts->size()) {
      size_t comma = hosts->find(',', i);
      std::string one =
          hosts->substr(i, comma == std::string::npos ? std::string::npos : comma - i);
      auto hp = HostPort(one, 26379);
      if (!hp.ok()) return hp.status();
      e.sentinels.push_back(*hp);
      if (comma == std::string::npos) break;
      i = comma + 1;
    }
    size_t s2 = path.find('/');
    e.master_name = path.substr(0, s2);
    if (e.master_name.empty()) {
      return Status::InvalidArgument(
          "redis+sentinel:// needs the master's name: "
          "redis+sentinel://H1:26379,H2:26379/MASTER/DB");
    }
    if (s2 != std::string::npos && s2 + 1 < path.size()) {
      auto db = Number(path.substr(s2 + 1), 0, 1 << 20, "database number");
      if (!db.ok()) return db.status();
      e.db = *db;
    }
  }
  if (!query.empty()) SLUICE_RETURN_IF_ERROR(Query(query, &e));
  return e;
}

std::string Describe(const Endpoint& e) {
  std::string db = " db " + std::to_string(e.db);
  if (!e.master_name.empty()) {
    std::string list;
    for (const auto& [h, p] : e.sentinels) {
      list += (list.empty() ? "" : ",") + h + ":" + std::to_string(p);
    }
    return "master " + e.master_name + " via sentinels " + list + db;
  }
  if (!e.unix_path.empty()) return "socket " + e.unix_path + db;
  return "host " + e.host + " port " + std::to_string(e.port) + db;
}

int64_t Reply::Int(int64_t fallback) const {
  if (type == Type::kInteger) return integer;
  if (type == Type::kString && !str.empty()) {
    char* end = nullptr;
    long long v = std::strtoll(str.c_str(), &end, 10);
    if (end != nullptr && *end == '\0') return v;
  }
  return fallback;
}

Status ErrorOf(const Reply& r, const std::string& context) {
  std::string word = r.str.substr(0, r.str.find(' '));
  std::string msg = context + ": " + r.str;
  if (word == "LOADING" || word == "MASTERDOWN" || word == "READONLY" || word == "TRYAGAIN" ||
      word == "BUSY" || word == "CLUSTERDOWN") {
    return Status::Unavailable(msg);
  }
  return Status::FailedPrecondition(msg);
}

Conn::Conn(Conn&& o) noexcept : ctx_(o.ctx_), server_(std::move(o.server_)) { o.ctx_ = nullptr; }

Conn& Conn::operator=(Conn&& o) noexcept {
  if (this != &o) {
    if (ctx_ != nullptr) redisFree(ctx_);
    ctx_ = o.ctx_;
    server_ = std::move(o.server_);
    o.ctx_ = nullptr;
  }
  return *this;
}

Conn::~Conn() {
  if (ctx_ != nullptr) redisFree(ctx_);
}

Result<Conn> Conn::Connect(const Endpoint& e, int timeout_ms) {
  Conn c;
  c.server_ = Describe(e);
  struct timeval tv = Tv(timeout_ms > 0 ? timeout_ms : 10'000);
  c.ctx_ = e.unix_path.empty() ? redisConnectWithTimeout(e.host.c_str(), e.port, tv)
                               : redisConnectUnixWithTimeout(e.unix_path.c_str(), tv);
  if (c.ctx_ == nullptr) return Status::Unavailable("Redis " + c.server_ + ": out of memory");
  if (c.ctx_->err != 0) {
    std::string why = c.ctx_->errstr;
    redisFree(c.ctx_);
    c.ctx_ = nullptr;
    return Status::Unavailable("cannot reach Redis " + c.server_ + ": " + why);
  }
  if (timeout_ms > 0) redisSetTimeout(c.ctx_, tv);
  if (!e.password.empty()) {
    std::vector<std::string> auth = {"AUTH"};
    if (!e.username.empty()) auth.push_back(e.username);
    auth.push_back(e.password);
    auto r = c.Command(auth);
    // The server's answer names no password.
    if (!r.ok()) return r.status().Annotate("Redis " + c.server_);
  }
  if (e.db != 0) {
    auto r = c.Command({"SELECT", std::to_string(e.db)});
    if (!r.ok()) return r.status().Annotate("Redis " + c.server_);
  }
  return c;
}

Result<Endpoint> Conn::FindMaster(const Endpoint& e, int timeout_ms) {
  std::string last = "no sentinel given";
  for (const auto& [host, port] : e.sentinels) {
    Endpoint s;
    s.host = host;
    s.port = port;
    auto c = Connect(s, timeout_ms);
    if (!c.ok()) {
      last = c.status().message();
      continue;
    }
    auto r = c->Command({"SENTINEL", "get-master-addr-by-name", e.master_name});
    if (!r.ok()) {
      last = r.status().message();
      continue;
    }
    if (r->type != Reply::Type::kArray || r->elements.size() != 2) {
      last = "sentinel " + host + ":" + std::to_string(port) + " does not know master " +
             e.master_name;
      continue;
    }
    Endpoint m = e;
    m.host = r->elements[0].str;
    m.port = static_cast<int>(r->elements[1].Int(6379));
    m.unix_path.clear();
    return m;
  }
  return Status::Unavailable("no sentinel of " + Describe(e) + " names the master: " + last);
}

void Conn::SetTimeout(int timeout_ms) {
  if (ctx_ != nullptr) redisSetTimeout(ctx_, Tv(timeout_ms));
}

Status Conn::Lost(const std::string& what) {
  std::string why = ctx_ != nullptr && ctx_->err != 0 ? ctx_->errstr : "connection lost";
  if (ctx_ != nullptr) redisFree(ctx_);
  ctx_ = nullptr;
  return Status::Unavailable("Redis " + server_ + ": " + what + ": " + why);
}

namespace {

struct Argv {
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  explicit Argv(const std::vector<std::string>& argv) {
    ptrs.reserve(argv.size());
    lens.reserve(argv.size());
    for (const std::string& a : argv) {
      ptrs.push_back(a.data());
      lens.push_back(a.size());
    }
  }
};

}  // namespace

Result<Reply> Conn::Command(const std::vector<std::string>& argv) {
  if (ctx_ == nullptr) return Status::Unavailable("Redis " + server_ + ": not connected");
  Argv a(argv);
  auto* raw = static_cast<redisReply*>(
      redisCommandArgv(ctx_, static_cast<int>(argv.size()), a.ptrs.data(), a.lens.data()));
  if (raw == nullptr) return Lost(argv.empty() ? "command" : argv[0]);
  Reply r = Copy(raw);
  freeReplyObject(raw);
  if (r.error()) return ErrorOf(r, argv.empty() ? "Redis" : argv[0]);
  return r;
}

Result<std::vector<Reply>> Conn::Pipeline(const std::vector<std::vector<std::string>>& commands) {
  if (ctx_ == nullptr) return Status::Unavailable("Redis " + server_ + ": not connected");
  for (const auto& argv : commands) {
    Argv a(argv);
    if (redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), a.ptrs.data(), a.lens.data()) !=
        REDIS_OK) {
      return Lost("pipeline");
    }
  }
  std::vector<Reply> out;
  out.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) return Lost("pipeline");
    out.push_back(Copy(static_cast<redisReply*>(raw)));
    freeReplyObject(raw);
  }
  return out;
}

}  // namespace sluice::redis
