// Secrets leave the process's argv once parsed: flag values and passwords inside URLs.
#include "cli/secrets.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice::cli {
namespace {

std::string Scrubbed(std::string url) {
  ScrubUrlPassword(url.data());
  return url;
}

TEST(SecretsTest, UrlPasswordsAreOverwrittenInPlace) {
  EXPECT_EQ(Scrubbed("amqp://pulse:s3cret@host:5671/vhost"), "amqp://pulse:xxxxxx@host:5671/vhost");
  EXPECT_EQ(Scrubbed("amqp://u:p@ss@host/"), "amqp://u:xxxx@host/");  // the last '@' ends it
  EXPECT_EQ(Scrubbed("https://u:@h/x"), "https://u:@h/x");
  EXPECT_EQ(Scrubbed("amqp://user@host/v"), "amqp://user@host/v");
  EXPECT_EQ(Scrubbed("amqp://host/a:b@c"), "amqp://host/a:b@c");  // '@' after the authority
  EXPECT_EQ(Scrubbed("not a url"), "not a url");
  EXPECT_EQ(Scrubbed(""), "");
  EXPECT_EQ(Scrubbed("host=h password=s3cret dbname=d"), "host=h password=xxxxxx dbname=d");
  EXPECT_EQ(Scrubbed("host=h password = 'a b' user=u"), "host=h password = 'xxx' user=u");
  EXPECT_EQ(Scrubbed("postgresql://u@h/db?password=pw&sslmode=x"),
            "postgresql://u@h/db?password=xx&sslmode=x");
  EXPECT_EQ(Scrubbed("host=h mypassword=keep"), "host=h mypassword=keep");
}

TEST(SecretsTest, FlagValuesAreOverwritten) {
  std::vector<std::string> args = {"sluice",
                                   "--publish-token",
                                   "tok",
                                   "--api-token=abc",
                                   "--publish-url",
                                   "amqp://u:pw@h/",
                                   "--publish-url=http://a:b@c/",
                                   "--name",
                                   "keep"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  ScrubSecretArgs(static_cast<int>(argv.size()), argv.data());
  EXPECT_EQ(args[2], "xxx");
  EXPECT_EQ(args[3], "--api-token=xxx");
  EXPECT_EQ(args[5], "amqp://u:xx@h/");
  EXPECT_EQ(args[6], "--publish-url=http://a:x@c/");
  EXPECT_EQ(args[8], "keep");
}

}  // namespace
}  // namespace sluice::cli
