/* Error codes shared by every paytx module and program.
 *
 * Every fallible function returns 0 or a negative value from enum paytx_err.
 * paytx_strerror() gives a sentence for logs; paytx_errcode() gives the
 * stable snake_case code that goes into outcomes ("reason") and into the
 * dead-letter headers. Both return static strings; safe from any thread.
 */
#ifndef PAYTX_ERROR_H
#define PAYTX_ERROR_H

#define PAYTX_MUST_CHECK __attribute__((warn_unused_result))

enum paytx_err {
	PAYTX_OK = 0,
	PAYTX_ENOMEM = -1,          /* out of memory */
	PAYTX_EINVAL = -2,          /* invalid_request: a field has a bad value */
	PAYTX_EJSON = -3,           /* malformed_json */
	PAYTX_ETOOBIG = -4,         /* message_too_large */
	PAYTX_EUTF8 = -5,           /* invalid_encoding */
	PAYTX_EMISSING = -6,        /* missing_field */
	PAYTX_ETYPE = -7,           /* wrong_type */
	PAYTX_ERANGE = -8,          /* amount_out_of_range */
	PAYTX_EUNBALANCED = -9,     /* unbalanced_legs */
	PAYTX_EMSGTYPE = -10,       /* unknown_message_type */
	PAYTX_ESIG = -11,           /* bad_signature */
	PAYTX_ECONFLICT = -12,      /* payment_id_conflict */
	PAYTX_EBROKER = -13,        /* broker_error: AMQP connection or channel failed */
	PAYTX_EDB = -14,            /* database_error */
	PAYTX_ECONFIG = -15,        /* bad_configuration */
	PAYTX_ETIMEOUT = -16,       /* timeout */
	PAYTX_ENOTFOUND = -17,      /* not_found */
	PAYTX_EPROTO = -18,         /* protocol_violation: a valid message at the wrong time */
	PAYTX_EUNROUTABLE = -19,    /* unroutable: no queue is bound for the message */
	PAYTX_EREPLAY = -20,        /* replayed: a protocol message seen before or out of its time window */
	PAYTX_ERR_MIN_ = -21,
};

/* A human-readable sentence for err. Never NULL. */
const char *paytx_strerror(int err);
/* The stable machine code for err (e.g. "missing_field"). Never NULL. */
const char *paytx_errcode(int err);

#endif
