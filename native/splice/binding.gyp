{
  "targets": [
    {
      "target_name": "wsvia_splice",
      "sources": ["splice.c", "dial.c"],
      "defines": ["NAPI_VERSION=6"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [["OS!='linux'", {"type": "none", "sources!": ["splice.c", "dial.c"]}]]
    }
  ]
}
