// Secrets given to the commands: read from files (preferred: a value on the command line is
// visible to every user in /proc/PID/cmdline and ps), and scrubbed from the command line.
#pragma once

#include <string>

#include "core/status.h"

namespace sluice::cli {

// The secret in `path`: its first line, without surrounding whitespace. InvalidArgument when
// it is empty; the error of the read otherwise. Warns when others than the owner may read it.
Result<std::string> ReadSecretFile(const std::string& flag, const std::string& path);

// One secret from its three places, the first given winning: `file` (read), `value` (a flag),
// the environment variable `env`. InvalidArgument when both a file and a value are given.
Result<std::string> Secret(const std::string& flag, const std::string& file,
                           const std::string& value, const char* env);

// Overwrites, in the process's own argv (what /proc/PID/cmdline shows), the values of the
// flags that carry secrets (--api-token, --publish-token), once they have been parsed.
void ScrubSecretArgs(int argc, char** argv);

// Overwrites with 'x' the password of a URL (scheme://USER:PASSWORD@HOST/...), in place.
void ScrubUrlPassword(char* url);

}  // namespace sluice::cli
