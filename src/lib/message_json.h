/* The protocol messages' decoders from a parsed JSON object, shared by the
 * single-message decoders (message.c) and txn.batch (message_batch.c).
 * Each fills out (zeroed by the caller, except a decision's commit) from
 * root, or returns a negative enum paytx_err with *fault filled. */
#ifndef PAYTX_MESSAGE_JSON_H
#define PAYTX_MESSAGE_JSON_H

#include <json-c/json.h>

#include "paytx/message.h"

int msg_prepare_from_json(struct json_object *root, void *out, struct paytx_fault *fault);
int msg_vote_from_json(struct json_object *root, void *out, struct paytx_fault *fault);
int msg_decision_from_json(struct json_object *root, void *out, struct paytx_fault *fault);
int msg_ack_from_json(struct json_object *root, void *out, struct paytx_fault *fault);

#endif
