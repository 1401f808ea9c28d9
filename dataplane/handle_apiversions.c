/*
 * ApiVersions: which APIs and versions this broker serves (request_apis).
 */
#include "handlers.h"
#include "request.h"

int handle_ApiVersions_fill(struct request *req, struct kafka_ApiVersionsResponse *resp)
{
	struct kafka_ApiVersionsResponse_ApiVersion *keys =
		HANDLER_ARRAY(req, struct kafka_ApiVersionsResponse_ApiVersion, request_apis_count);
	if (keys == NULL)
		return -1;
	for (int i = 0; i < request_apis_count; i++) {
		kafka_ApiVersionsResponse_ApiVersion_init(&keys[i]);
		keys[i].ApiKey = request_apis[i].api_key;
		keys[i].MinVersion = request_apis[i].advertised_min;
		keys[i].MaxVersion = request_apis[i].max_version;
	}
	resp->ApiKeys = keys;
	resp->ApiKeys_count = request_apis_count;
	return 0;
}

int handle_ApiVersions(struct request *req, struct kreader *r)
{
	struct kafka_ApiVersionsRequest body;
	if (kafka_ApiVersionsRequest_decode(r, req->api_version, &body) != 0)
		return -1;
	struct kafka_ApiVersionsResponse resp;
	kafka_ApiVersionsResponse_init(&resp);
	if (handle_ApiVersions_fill(req, &resp) != 0)
		return -1;
	request_response_begin(req);
	kafka_ApiVersionsResponse_encode(&req->resp, req->api_version, &resp);
	request_response_end(req);
	return 0;
}
