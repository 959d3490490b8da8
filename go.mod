module github.com/streamstatus/streamstatus

go 1.24

require (
	github.com/aws/aws-sdk-go-v2 v1.48.0
	github.com/aws/aws-sdk-go-v2/service/bedrockagentruntime v1.31.0
	github.com/aws/aws-sdk-go-v2/service/bedrockruntime v1.17.0
	github.com/aws/aws-sdk-go-v2/service/sagemakerruntime v1.31.0
	github.com/aws/smithy-go v1.28.9
	github.com/cenkalti/backoff/v4 v4.0.0
	github.com/redis/go-redis/v9 v9.0.0
	go.uber.org/goleak v1.3.0
)

require (
	github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream v1.6.9 // indirect
	github.com/aws/aws-sdk-go-v2/internal/configsources v1.3.26 // indirect
	github.com/aws/aws-sdk-go-v2/internal/endpoints/v2 v2.6.26 // indirect
	github.com/cespare/xxhash/v2 v2.2.0 // indirect
	github.com/dgryski/go-rendezvous v0.0.0-20200823014737-9f7001d12a5f // indirect
)
