#include <cstdio>

int main(int argc, char** argv) {
  std::fprintf(stderr, "ditrun: no commands yet\n");
  return 2;
}
