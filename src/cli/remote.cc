// Commands that ask the daemon over its API (libcurl): priority, promote.
#include "cli/remote.h"

#include <curl/curl.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>

#include "cli/commands.h"
#include "cli/secrets.h"
#include "core/json.h"

namespace sluice::cli {
namespace {

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

}  // namespace

Result<RemoteAnswer> Ask(const RemoteFlags& flags, const std::string& method,
                         const std::string& path, const std::string& body) {
  // HOST:PORT alone is taken as http://HOST:PORT; any scheme but http(s) is refused.
  std::string url = flags.api.find("://") == std::string::npos ? "http://" + flags.api : flags.api;
  std::string scheme = url.substr(0, url.find("://"));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "http" && scheme != "https") {
    return Status::InvalidArgument("--api: '" + flags.api +
                                   "' is not an http:// or https:// URL (the daemon's API, as "
                                   "http://127.0.0.1:8080)");
  }
  auto secret = Secret("--api-token", flags.token_file, flags.token, "SLUICE_API_TOKEN");
  if (!secret.ok()) return secret.status();
  std::string token = *secret;
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return Status::Internal("curl_easy_init failed");
  std::string answer;
  while (!url.empty() && url.back() == '/') url.pop_back();
  url += path;
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  if (!token.empty())
    headers = curl_slist_append(headers, ("Authorization: Bearer " + token).c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  if (method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    return Status::Unavailable("cannot reach the daemon at " + flags.api +
                               " (--api): " + curl_easy_strerror(rc));
  }
  return RemoteAnswer{status, std::move(answer)};
}

int AnswerExitCode(long status) {
  if (status < 300) return 0;
  if (status == 404) return 3;
  if (status == 400 || status == 409 || status == 413 || status == 422) return 2;
  return 1;
}

namespace {

// POSTs `body` to the daemon; prints its answer; the exit code its status means.
int Post(const RemoteFlags& flags, const std::string& path, const std::string& body) {
  auto answer = Ask(flags, "POST", path, body);
  if (!answer.ok()) return ExitCode(answer.status());
  std::printf("%s\n", answer->body.c_str());
  return AnswerExitCode(answer->status);
}

bool AllDigits(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

}  // namespace

int RunPriority(const RemoteFlags& flags, const std::string& what) {
  if (AllDigits(what)) return Post(flags, "/api/v1/jobs/" + what + "/priority", "{}");
  return Post(flags, "/api/v1/priority", "{\"name\":" + JsonQuote(what) + "}");
}

int RunPromote(const RemoteFlags& flags, const std::string& name, bool all) {
  if (all == !name.empty()) {
    return ExitCode(Status::InvalidArgument("give a NAME or --all (not both)"));
  }
  return Post(flags, "/api/v1/promote",
              all ? std::string("{\"all\":true}") : "{\"name\":" + JsonQuote(name) + "}");
}

}  // namespace sluice::cli
