// Status and Result<T>: the one error type of every layer.
//
// Codes are chosen by what the caller should do next (abseil's convention):
//   kUnavailable       - a passing condition (busy database, ENOSPC, upload 5xx): retry later.
//   kInvalidArgument   - the input itself is wrong (bad JSON, schema violation): never retry.
//   kFailedPrecondition- the world must change first (unsupported version, missing file).
//   kNotFound, kAlreadyExists, kIOError, kInternal, kCancelled as usual.
// api/ maps codes to HTTP statuses and cli/ to exit codes, each in one place.
#pragma once

#include <cerrno>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace sluice {

enum class Code {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kFailedPrecondition,
  kUnavailable,
  kIOError,
  kCancelled,
  kInternal,
};

std::string_view CodeName(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string msg) {
    return {Code::kInvalidArgument, std::move(msg)};
  }
  static Status NotFound(std::string msg) { return {Code::kNotFound, std::move(msg)}; }
  static Status AlreadyExists(std::string msg) { return {Code::kAlreadyExists, std::move(msg)}; }
  static Status FailedPrecondition(std::string msg) {
    return {Code::kFailedPrecondition, std::move(msg)};
  }
  static Status Unavailable(std::string msg) { return {Code::kUnavailable, std::move(msg)}; }
  static Status IOError(std::string msg) { return {Code::kIOError, std::move(msg)}; }
  static Status Cancelled(std::string msg) { return {Code::kCancelled, std::move(msg)}; }
  static Status Internal(std::string msg) { return {Code::kInternal, std::move(msg)}; }

  // The one conversion of errno at the syscall boundary. Errors that pass by themselves
  // (ENOSPC, EAGAIN, EINTR, EBUSY, EMFILE, ENFILE, ENOMEM, EDQUOT) become kUnavailable; ENOENT
  // becomes kNotFound; EEXIST kAlreadyExists; everything else kIOError.
  static Status FromErrno(int err, std::string_view context);

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // Whether trying again later can help.
  bool IsTransient() const { return code_ == Code::kUnavailable || code_ == Code::kIOError; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  std::string ToString() const;

  // Prefixes the message with more context; keeps the code.
  Status Annotate(std::string_view context) const;

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

// A value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT: must not be OK

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

#define SLUICE_RETURN_IF_ERROR(expr) \
  do {                               \
    ::sluice::Status _st = (expr);   \
    if (!_st.ok()) return _st;       \
  } while (0)

}  // namespace sluice
