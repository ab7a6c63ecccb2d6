module hdrtap-tests/gotls-server

go 1.19
