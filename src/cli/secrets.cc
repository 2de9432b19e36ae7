// Secrets from files, flags and the environment.
#include "cli/secrets.h"

#include <sys/stat.h>

#include <cstdlib>
#include <cstring>

#include "core/env.h"
#include "core/spdlog.h"

namespace sluice::cli {

Result<std::string> ReadSecretFile(const std::string& flag, const std::string& path) {
  std::string text;
  Status st = ReadConfigFile(path, 1 << 16, &text);
  if (!st.ok()) return st.Annotate(flag);
  struct stat sb;
  if (::stat(path.c_str(), &sb) == 0 && (sb.st_mode & 077) != 0) {
    spdlog::warn("{} {}: others than its owner can read it (chmod 600 it)", flag, path);
  }
  size_t eol = text.find('\n');
  if (eol != std::string::npos) text.resize(eol);
  size_t a = text.find_first_not_of(" \t\r");
  size_t b = text.find_last_not_of(" \t\r");
  text = a == std::string::npos ? "" : text.substr(a, b - a + 1);
  if (text.empty()) return Status::InvalidArgument(flag + " " + path + " is empty");
  return text;
}

Result<std::string> Secret(const std::string& flag, const std::string& file,
                           const std::string& value, const char* env) {
  if (!file.empty() && !value.empty()) {
    return Status::InvalidArgument("give " + flag + " or " + flag + "-file, not both");
  }
  if (!file.empty()) return ReadSecretFile(flag + "-file", file);
  if (!value.empty()) return value;
  const char* from_env = env != nullptr ? std::getenv(env) : nullptr;
  return std::string(from_env != nullptr ? from_env : "");
}

void ScrubSecretArgs(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    for (const char* flag : {"--api-token", "--publish-token"}) {
      size_t n = std::strlen(flag);
      char* value = nullptr;
      if (std::strcmp(argv[i], flag) == 0 && i + 1 < argc) {
        value = argv[i + 1];
      } else if (std::strncmp(argv[i], flag, n) == 0 && argv[i][n] == '=') {
        value = argv[i] + n + 1;
      }
      if (value != nullptr) std::memset(value, 'x', std::strlen(value));
    }
    // A password inside a URL (scheme://USER:PASSWORD@HOST/...) or a libpq string
    // ("... password=SECRET ...").
    for (const char* url_flag :
         {"--publish-url", "--database", "--to", "--from", "--items-redis"}) {
      size_t n = std::strlen(url_flag);
      char* url = nullptr;
      if (std::strcmp(argv[i], url_flag) == 0 && i + 1 < argc) {
        url = argv[i + 1];
      } else if (std::strncmp(argv[i], url_flag, n) == 0 && argv[i][n] == '=') {
        url = argv[i] + n + 1;
      }
      if (url != nullptr) ScrubUrlPassword(url);
    }
  }
}

void ScrubUrlPassword(char* url) {
  // libpq's key=value form, and a URL's ?password= parameter.
  for (const char* key : {"password=", "password ="}) {
    for (char* p = std::strstr(url, key); p != nullptr; p = std::strstr(p + 1, key)) {
      if (p != url && !(p[-1] == ' ' || p[-1] == '?' || p[-1] == '&')) continue;
      char* v = p + std::strlen(key);
      while (*v == ' ') ++v;
      bool quoted = *v == '\'';
      if (quoted) ++v;
      for (; *v != '\0'; ++v) {
        if (quoted ? *v == '\'' : (*v == ' ' || *v == '&')) break;
        *v = 'x';
      }
    }
  }
  char* authority = std::strstr(url, "://");
  if (authority == nullptr) return;
  authority += 3;
  size_t end = std::strcspn(authority, "/?#");
  char* at = static_cast<char*>(memrchr(authority, '@', end));
  if (at == nullptr) return;
  char* colon =
      static_cast<char*>(std::memchr(authority, ':', static_cast<size_t>(at - authority)));
  if (colon != nullptr) std::memset(colon + 1, 'x', static_cast<size_t>(at - colon - 1));
}

}  // namespace sluice::cli
