// Tests of UTF-8 checks and the rule for names.
#include "core/text.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(HexBytes, TwoLowerCaseDigitsAByte) {
  EXPECT_EQ(HexBytes(std::string("\x00\xff\x10\xab", 4)), "00ff10ab");
  EXPECT_EQ(HexBytes(""), "");
}

TEST(IsValidUtf8, AcceptsWellFormedText) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii that is longer than eight bytes"));
  EXPECT_TRUE(IsValidUtf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));
}

TEST(IsValidUtf8, RefusesEveryMalformedClass) {
  EXPECT_FALSE(IsValidUtf8("\xff"));                   // never in UTF-8
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));               // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xE0\x80\xAF"));           // overlong, 3 bytes
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));           // a surrogate
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80"));       // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("abc\xE2\x82"));            // cut short
  EXPECT_FALSE(IsValidUtf8("\x80"));                   // a lone continuation byte
  EXPECT_FALSE(IsValidUtf8("12345678\xC3(12345678"));  // bad continuation after a fast run
}

TEST(ValidUtf8, ReplacesOnlyTheBadBytes) {
  EXPECT_EQ(ValidUtf8("a\xff"
                      "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(ValidUtf8("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_TRUE(IsValidUtf8(ValidUtf8("\xE2\x82\xff\xC0")));
}

TEST(CheckName, RefusesEmptyLongInvalidAndControlCharacters) {
  EXPECT_TRUE(CheckName("task_id", "arthur-1.git").ok());
  EXPECT_TRUE(CheckName("task_id", "t\xC3\xA9").ok());
  EXPECT_EQ(CheckName("task_id", "").code(), Code::kInvalidArgument);
  EXPECT_FALSE(CheckName("task_id", std::string(256, 'a')).ok());
  EXPECT_TRUE(CheckName("task_id", std::string(255, 'a')).ok());
  EXPECT_FALSE(CheckName("task_id", "a\xff").ok());
  EXPECT_FALSE(CheckName("task_id", std::string("a\0b", 3)).ok());
  EXPECT_FALSE(CheckName("task_id", "a\nb").ok());
  EXPECT_FALSE(CheckName("task_id", "a\x7f").ok());
  EXPECT_FALSE(CheckName("task_id", "a\xC2\x85").ok());  // NEL, a C1 control
  EXPECT_NE(CheckName("task_id", "a\xff").message().find("task_id"), std::string::npos);
}

// What command_runner.py writes after "Running " (Python 3's repr of the argv list).
TEST(PrintableLine, ShowsControlsAndBadBytesAsText) {
  EXPECT_EQ(PrintableLine("plain ünï"), "plain ünï");
  EXPECT_EQ(PrintableLine("a\nb\r\t\x7f"), "a\\x0ab\\x0d\\x09\\x7f");
  EXPECT_EQ(PrintableLine("\x1b]0;t\x07\x1b[2J"), "\\x1b]0;t\\x07\\x1b[2J");
  // C1 controls (U+009B is CSI to some terminals), but not the letters beside them.
  EXPECT_EQ(PrintableLine("x\xC2\x9B"
                          "2Jy\xC2\x85"),
            "x\\u009b2Jy\\u0085");
  EXPECT_EQ(PrintableLine("\xC2\xA0\xC3\xA9"), "\xC2\xA0\xC3\xA9");
  EXPECT_EQ(PrintableLine("bad\xff\xC2"), "bad\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(Shortened, CutsAtACharacterAndSaysHowMuchWasLeftOut) {
  EXPECT_EQ(Shortened("short", 10), "short");
  EXPECT_EQ(Shortened(std::string(20, 'z'), 8), "zzzzzzzz... [12 bytes more]");
  // "é" is two bytes: a cut inside it keeps the character out whole.
  EXPECT_EQ(Shortened("abcé"
                      "def",
                      4),
            "abc... [5 bytes more]");
  EXPECT_EQ(Shortened("abcé"
                      "def",
                      5),
            "abcé... [3 bytes more]");
  EXPECT_EQ(Shortened(std::string(1 << 20, 'y')),
            std::string(kMaxMessageBytes, 'y') + "... [1044480 bytes more]");
}

TEST(PythonRepr, WritesAListAsPythonsReprDoes) {
  EXPECT_EQ(PythonRepr({"/bin/echo", "hi"}), "['/bin/echo', 'hi']");
  EXPECT_EQ(PythonRepr({}), "[]");
  EXPECT_EQ(PythonRepr({"it's"}), "[\"it's\"]");
  EXPECT_EQ(PythonRepr({"it's \"q\""}), "['it\\'s \"q\"']");
  EXPECT_EQ(PythonRepr({"a\\b", "tab\tnl\ncr\r"}), "['a\\\\b', 'tab\\tnl\\ncr\\r']");
  EXPECT_EQ(PythonRepr({"\x01\x7f"}), "['\\x01\\x7f']");
  EXPECT_EQ(PythonRepr({"caf\xC3\xA9 \xE2\x82\xAC"}), "['caf\xC3\xA9 \xE2\x82\xAC']");
  EXPECT_EQ(PythonRepr({"nb\xC2\xA0sp"}), "['nb\\xa0sp']");
  EXPECT_EQ(PythonRepr({"\xE2\x80\x8B"}), "['\\u200b']");
}

}  // namespace
}  // namespace sluice
