/* Error codes: a sentence for logs and a stable code for outcomes */
#include <stddef.h>

#include "paytx/error.h"

struct err_info {
	const char *code;
	const char *text;
};

/* Indexed by -err. */
static const struct err_info err_infos[] = {
	[-PAYTX_OK] = { "ok", "Success" },
	[-PAYTX_ENOMEM] = { "out_of_memory", "Out of memory" },
	[-PAYTX_EINVAL] = { "invalid_request", "A field has an invalid value" },
	[-PAYTX_EJSON] = { "malformed_json", "The message is not well-formed JSON" },
	[-PAYTX_ETOOBIG] = { "message_too_large", "The message or a field of it is too large" },
	[-PAYTX_EUTF8] = { "invalid_encoding", "The message is not valid UTF-8" },
	[-PAYTX_EMISSING] = { "missing_field", "A required field is missing" },
	[-PAYTX_ETYPE] = { "wrong_type", "A field has the wrong JSON type" },
	[-PAYTX_ERANGE] = { "amount_out_of_range", "A number is out of its allowed range" },
	[-PAYTX_EUNBALANCED] = { "unbalanced_legs",
				 "The legs do not sum to zero in each currency" },
	[-PAYTX_EMSGTYPE] = { "unknown_message_type", "The message type is unknown" },
	[-PAYTX_ESIG] = { "bad_signature", "The message signature is missing or invalid" },
	[-PAYTX_ECONFLICT] = { "payment_id_conflict",
			       "The payment_id was already used with different content" },
	[-PAYTX_EBROKER] = { "broker_error", "The AMQP connection or channel failed" },
	[-PAYTX_EDB] = { "database_error", "A database operation failed" },
	[-PAYTX_ECONFIG] = { "bad_configuration", "The configuration is invalid" },
	[-PAYTX_ETIMEOUT] = { "timeout", "The operation timed out" },
	[-PAYTX_ENOTFOUND] = { "not_found", "The requested item was not found" },
	[-PAYTX_EPROTO] = { "protocol_violation", "A valid message arrived at the wrong time" },
	[-PAYTX_EUNROUTABLE] = { "unroutable", "No queue is bound for the message" },
	[-PAYTX_EREPLAY] = { "replayed",
			     "A protocol message was seen before or is outside its time window" },
};

_Static_assert(sizeof(err_infos) / sizeof(err_infos[0]) == -PAYTX_ERR_MIN_,
	       "every enum paytx_err value needs an entry");

static const struct err_info *err_lookup(int err)
{
	if (err > 0 || err <= PAYTX_ERR_MIN_)
		return NULL;
	return &err_infos[-err];
}

const char *paytx_strerror(int err)
{
	const struct err_info *info = err_lookup(err);

	return info ? info->text : "Unknown error";
}

const char *paytx_errcode(int err)
{
	const struct err_info *info = err_lookup(err);

	return info ? info->code : "unknown_error";
}
