// Format checks, beyond the official suite's cases.
#include "core/json_formats.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(FormatsTest, DateTimeFollowsRfc3339WithRealCalendarDays) {
  EXPECT_TRUE(IsRfc3339DateTime("2020-08-14T23:08:06.967000+00:00"));
  EXPECT_TRUE(IsRfc3339DateTime("2024-02-29t00:00:00z"));
  // As kcidb-io checks it in production (rfc3339-validator): no leap second, no year 0.
  EXPECT_FALSE(IsRfc3339DateTime("1998-12-31T23:59:60Z"));
  EXPECT_FALSE(IsRfc3339DateTime("2020-12-31T23:59:60Z"));
  EXPECT_FALSE(IsRfc3339DateTime("0000-01-01T00:00:00Z"));
  EXPECT_TRUE(IsRfc3339DateTime("0001-01-01T00:00:00Z"));
  EXPECT_FALSE(IsRfc3339DateTime("2023-02-29T00:00:00Z"));
  EXPECT_FALSE(IsRfc3339DateTime("2020-08-14 23:08:06Z"));
  EXPECT_FALSE(IsRfc3339DateTime("2020-08-14T23:08:06"));
  EXPECT_FALSE(IsRfc3339DateTime("2020-08-14T24:00:00Z"));
  EXPECT_FALSE(IsRfc3339DateTime("2020-08-14T23:08:06.Z"));
  EXPECT_FALSE(IsRfc3339DateTime("2020-08-14T23:08:06+0100"));
  EXPECT_FALSE(IsRfc3339DateTime(""));
}

TEST(FormatsTest, UriNeedsASchemeAndValidCharacters) {
  EXPECT_TRUE(IsRfc3986Uri("https://git.kernel.org/pub/scm/linux.git"));
  EXPECT_TRUE(IsRfc3986Uri("https://[::1]:8080/a?b=c#d"));
  EXPECT_TRUE(IsRfc3986Uri("mailto:someone@example.com"));
  EXPECT_TRUE(IsRfc3986Uri("https://example.org/a%20b"));
  EXPECT_FALSE(IsRfc3986Uri("/relative/path"));
  EXPECT_FALSE(IsRfc3986Uri("https://example.org/a b"));
  EXPECT_FALSE(IsRfc3986Uri("https://example.org/%zz"));
  EXPECT_FALSE(IsRfc3986Uri("https://example.org:80a/"));
  EXPECT_FALSE(IsRfc3986Uri("https://exa\\mple.org/"));
  EXPECT_FALSE(IsRfc3986Uri("1http://x"));
}

TEST(FormatsTest, EmailOnlyNeedsAnAtSignLikeTheReference) {
  EXPECT_TRUE(IsEmail("joe@example.com"));
  EXPECT_TRUE(IsEmail("odd@"));
  EXPECT_FALSE(IsEmail("joe.example.com"));
}

}  // namespace
}  // namespace sluice
