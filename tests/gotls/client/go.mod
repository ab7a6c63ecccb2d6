module hdrtap-tests/gotls-client

go 1.19
