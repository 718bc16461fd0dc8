// File: shm/layout/ownership.cc
#include "shm/layout/ownership.hpp"

#include <pwd.h>

#include <cstdio>
#include <vector>

namespace modelpool::layout {

std::string describe_user(uid_t uid) {
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buf(16384);
  const std::string id = "uid " + std::to_string(uid);
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) return id;
  return std::string(found->pw_name) + " (" + id + ")";
}

std::string describe_owner_and_mode(const struct stat& st) {
  char mode[16];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  return "owned by " + describe_user(st.st_uid) + ", mode " + mode;
}

namespace {

const char* type_name(mode_t type) {
  switch (type) {
    case S_IFREG:
      return "a regular file";
    case S_IFDIR:
      return "a directory";
    case S_IFSOCK:
      return "a socket";
    case S_IFLNK:
      return "a symbolic link";
    default:
      return "a special file";
  }
}

}  // namespace

Status check_owned(const struct stat& st, mode_t type, uid_t owner, const std::string& what,
                   const std::string& path, const std::string& hint) {
  std::string wrong;
  if ((st.st_mode & S_IFMT) != type) {
    wrong = std::string("it is ") + type_name(st.st_mode & S_IFMT) + ", not " + type_name(type);
  } else if (st.st_uid != owner) {
    wrong = "it must be owned by " + describe_user(owner);
  } else if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    wrong = "group or others may write it";
  } else {
    return {};
  }
  std::string msg =
      "refusing " + what + " " + path + " (" + describe_owner_and_mode(st) + "): " + wrong;
  if (!hint.empty()) msg += "; " + hint;
  return error(ErrorCode::kForbidden, std::move(msg));
}

}  // namespace modelpool::layout
