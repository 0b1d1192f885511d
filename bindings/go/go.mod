module libsmtpc.example/smtpc

go 1.19
