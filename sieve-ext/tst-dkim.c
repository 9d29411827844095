/* The dkim test of vnd.dovecot.dkim.

   Syntax:
     dkim [COMPARATOR] [MATCH-TYPE] [":domain" <domains: string-list>]
          [":selector" <selectors: string-list>] [":aligned"]
          <results: string-list>

   The value compared with the results is one RFC 8601 keyword (none, pass,
   fail, policy, neutral, temperror, permerror): the message's DKIM verdict,
   or, with tags, the verdict over the signatures they select (none if they
   select nothing). */

#include "lib.h"
#include "array.h"
#include "str.h"
#include "str-sanitize.h"

#include "sieve-common.h"
#include "sieve-extensions.h"
#include "sieve-commands.h"
#include "sieve-stringlist.h"
#include "sieve-code.h"
#include "sieve-comparators.h"
#include "sieve-match-types.h"
#include "sieve-validator.h"
#include "sieve-generator.h"
#include "sieve-interpreter.h"
#include "sieve-runtime-trace.h"
#include "sieve-dump.h"
#include "sieve-match.h"

#include "ext-dkim-common.h"

/*
 * Test definition
 */

static bool
tst_dkim_registered(struct sieve_validator *valdtr,
		    const struct sieve_extension *ext,
		    struct sieve_command_registration *cmd_reg);
static bool
tst_dkim_validate(struct sieve_validator *valdtr, struct sieve_command *tst);
static bool
tst_dkim_generate(const struct sieve_codegen_env *cgenv,
		  struct sieve_command *tst);

const struct sieve_command_def dkim_test = {
	.identifier = "dkim",
	.type = SCT_TEST,
	.positional_args = 1,
	.subtests = 0,
	.block_allowed = FALSE,
	.block_required = FALSE,
	.registered = tst_dkim_registered,
	.validate = tst_dkim_validate,
	.generate = tst_dkim_generate,
};

/*
 * Tagged arguments
 */

static bool
tst_dkim_validate_list_tag(struct sieve_validator *valdtr,
			   struct sieve_ast_argument **arg,
			   struct sieve_command *tst);

static const struct sieve_argument_def dkim_domain_tag = {
	.identifier = "domain",
	.validate = tst_dkim_validate_list_tag,
};

static const struct sieve_argument_def dkim_selector_tag = {
	.identifier = "selector",
	.validate = tst_dkim_validate_list_tag,
};

static const struct sieve_argument_def dkim_aligned_tag = {
	.identifier = "aligned",
};

enum tst_dkim_optional {
	OPT_DKIM_DOMAIN = SIEVE_MATCH_OPT_LAST,
	OPT_DKIM_SELECTOR,
	OPT_DKIM_ALIGNED,
};

/*
 * Operation
 */

static bool
tst_dkim_operation_dump(const struct sieve_dumptime_env *denv,
			sieve_size_t *address);
static int
tst_dkim_operation_execute(const struct sieve_runtime_env *renv,
			   sieve_size_t *address);

const struct sieve_operation_def dkim_operation = {
	.mnemonic = "DKIM",
	.ext_def = &vnd_dkim_extension,
	.code = 0,
	.dump = tst_dkim_operation_dump,
	.execute = tst_dkim_operation_execute,
};

/*
 * Validation
 */

static bool
tst_dkim_validate_list_tag(struct sieve_validator *valdtr,
			   struct sieve_ast_argument **arg,
			   struct sieve_command *tst)
{
	struct sieve_ast_argument *tag = *arg;

	/* :domain <domains: string-list>, :selector <selectors: string-list>;
	   the list stays attached to the tag as the operand's value */
	*arg = sieve_ast_arguments_detach(*arg, 1);
	if (!sieve_validate_tag_parameter(valdtr, tst, tag, *arg, NULL, 0,
					  SAAT_STRING_LIST, FALSE))
		return FALSE;
	*arg = sieve_ast_argument_next(*arg);
	return TRUE;
}

static bool
tst_dkim_registered(struct sieve_validator *valdtr,
		    const struct sieve_extension *ext,
		    struct sieve_command_registration *cmd_reg)
{
	sieve_comparators_link_tag(valdtr, cmd_reg, SIEVE_MATCH_OPT_COMPARATOR);
	sieve_match_types_link_tags(valdtr, cmd_reg, SIEVE_MATCH_OPT_MATCH_TYPE);
	sieve_validator_register_tag(valdtr, cmd_reg, ext, &dkim_domain_tag,
				     OPT_DKIM_DOMAIN);
	sieve_validator_register_tag(valdtr, cmd_reg, ext, &dkim_selector_tag,
				     OPT_DKIM_SELECTOR);
	sieve_validator_register_tag(valdtr, cmd_reg, ext, &dkim_aligned_tag,
				     OPT_DKIM_ALIGNED);
	return TRUE;
}

/* Whether the test compares with :is, explicitly or by default. */
static bool tst_dkim_uses_is(struct sieve_command *tst)
{
	struct sieve_ast_argument *arg;

	for (arg = sieve_command_first_argument(tst); arg != NULL;
	     arg = sieve_ast_argument_next(arg)) {
		if (arg->argument != NULL && sieve_argument_is_match_type(arg)) {
			const struct sieve_match_type_context *mtctx =
				arg->argument->data;

			return mtctx != NULL &&
				mtctx->match_type->def == &is_match_type;
		}
	}
	return TRUE;
}

/* A literal that no result keyword equals is most likely a typo
   ("passed"), and the test would silently never match: warn. */
static int
tst_dkim_check_result_word(void *context, struct sieve_ast_argument *arg)
{
	struct sieve_validator *valdtr = context;
	enum dkim_result result;

	if (sieve_argument_is_string_literal(arg) &&
	    !dkim_result_parse(sieve_ast_argument_strc(arg), &result)) {
		sieve_argument_validate_warning(valdtr, arg,
			"dkim test: '%s' is not a DKIM result (none, pass, "
			"fail, policy, neutral, temperror, permerror), so it "
			"never matches",
			str_sanitize(sieve_ast_argument_strc(arg), 64));
	}
	return 1;
}

static bool
tst_dkim_validate(struct sieve_validator *valdtr, struct sieve_command *tst)
{
	struct sieve_ast_argument *arg = tst->first_positional;
	const struct sieve_match_type mcht_default =
		SIEVE_MATCH_TYPE_DEFAULT(is_match_type);
	const struct sieve_comparator cmp_default =
		SIEVE_COMPARATOR_DEFAULT(i_ascii_casemap_comparator);

	if (!sieve_validate_positional_argument(valdtr, tst, arg, "results", 1,
						SAAT_STRING_LIST))
		return FALSE;
	if (!sieve_validator_argument_activate(valdtr, tst, arg, FALSE))
		return FALSE;
	if (!sieve_match_type_validate(valdtr, tst, arg, &mcht_default,
				       &cmp_default))
		return FALSE;
	if (tst_dkim_uses_is(tst)) {
		struct sieve_ast_argument *item = arg;

		(void)sieve_ast_stringlist_map(&item, valdtr,
					       tst_dkim_check_result_word);
	}
	return TRUE;
}

/*
 * Code generation
 */

static bool
tst_dkim_generate(const struct sieve_codegen_env *cgenv,
		  struct sieve_command *tst)
{
	sieve_operation_emit(cgenv->sblock, tst->ext, &dkim_operation);
	return sieve_generate_arguments(cgenv, tst, NULL);
}

/*
 * Code dump
 */

static bool
tst_dkim_operation_dump(const struct sieve_dumptime_env *denv,
			sieve_size_t *address)
{
	int opt_code = 0;

	sieve_code_dumpf(denv, "DKIM");
	sieve_code_descend(denv);

	for (;;) {
		bool opok = TRUE;
		int opt;

		if ((opt = sieve_match_opr_optional_dump(denv, address,
							 &opt_code)) < 0)
			return FALSE;
		if (opt == 0)
			break;

		switch (opt_code) {
		case OPT_DKIM_DOMAIN:
			opok = sieve_opr_stringlist_dump(denv, address,
							 "domain");
			break;
		case OPT_DKIM_SELECTOR:
			opok = sieve_opr_stringlist_dump(denv, address,
							 "selector");
			break;
		case OPT_DKIM_ALIGNED:
			sieve_code_dumpf(denv, "aligned");
			break;
		default:
			return FALSE;
		}
		if (!opok)
			return FALSE;
	}
	return sieve_opr_stringlist_dump(denv, address, "results");
}

/*
 * Code execution
 */

/* Reads a string list operand into a NULL-terminated array (data stack). */
static int
stringlist_to_array(const struct sieve_runtime_env *renv,
		    struct sieve_stringlist *list, const char *what,
		    const char *const **array_r)
{
	ARRAY_TYPE(const_string) items;
	string_t *item;
	int ret;

	t_array_init(&items, 4);
	while ((ret = sieve_stringlist_next_item(list, &item)) > 0) {
		const char *value = t_strdup(str_c(item));

		array_push_back(&items, &value);
	}
	if (ret < 0) {
		sieve_runtime_trace_error(renv, "invalid %s item", what);
		return list->exec_status;
	}
	array_append_zero(&items);
	*array_r = array_front(&items);
	return SIEVE_EXEC_OK;
}

static int
tst_dkim_match(const struct sieve_runtime_env *renv,
	       struct sieve_match_type *mcht, struct sieve_comparator *cmp,
	       struct sieve_stringlist *domain_list,
	       struct sieve_stringlist *selector_list, bool aligned,
	       struct sieve_stringlist *results_list, int *match_r)
{
	const struct dkim_summary *summary;
	struct dkim_signature_filter filter;
	struct sieve_stringlist *value_list;
	enum dkim_result result;
	bool filtered = domain_list != NULL || selector_list != NULL || aligned;
	int ret;

	i_zero(&filter);
	filter.aligned = aligned;
	if (domain_list != NULL &&
	    (ret = stringlist_to_array(renv, domain_list, "domain",
				       &filter.domains)) <= 0)
		return ret;
	if (selector_list != NULL &&
	    (ret = stringlist_to_array(renv, selector_list, "selector",
				       &filter.selectors)) <= 0)
		return ret;

	summary = ext_dkim_get_summary(renv, renv->oprtn->ext);
	result = dkim_summary_verdict(summary, filtered ? &filter : NULL);
	sieve_runtime_trace(renv, SIEVE_TRLVL_TESTS, "%s: %s",
			    filtered ? "result of the selected signatures" :
			    "message verdict", dkim_result_name(result));

	value_list = sieve_single_stringlist_create_cstr(
		renv, dkim_result_name(result), FALSE);
	*match_r = sieve_match(renv, mcht, cmp, value_list, results_list,
			       &ret);
	return *match_r < 0 ? ret : SIEVE_EXEC_OK;
}

static int
tst_dkim_operation_execute(const struct sieve_runtime_env *renv,
			   sieve_size_t *address)
{
	struct sieve_match_type mcht = SIEVE_MATCH_TYPE_DEFAULT(is_match_type);
	struct sieve_comparator cmp =
		SIEVE_COMPARATOR_DEFAULT(i_ascii_casemap_comparator);
	struct sieve_stringlist *domain_list = NULL, *selector_list = NULL;
	struct sieve_stringlist *results_list;
	bool aligned = FALSE;
	int opt_code = 0, match = 0, ret;

	for (;;) {
		int opt;

		if ((opt = sieve_match_opr_optional_read(
			renv, address, &opt_code, &ret, &cmp, &mcht)) < 0)
			return ret;
		if (opt == 0)
			break;

		switch (opt_code) {
		case OPT_DKIM_DOMAIN:
			ret = sieve_opr_stringlist_read(renv, address, "domain",
							&domain_list);
			break;
		case OPT_DKIM_SELECTOR:
			ret = sieve_opr_stringlist_read(renv, address,
							"selector",
							&selector_list);
			break;
		case OPT_DKIM_ALIGNED:
			aligned = TRUE;
			ret = SIEVE_EXEC_OK;
			break;
		default:
			sieve_runtime_trace_error(
				renv, "unknown optional operand");
			ret = SIEVE_EXEC_BIN_CORRUPT;
		}
		if (ret <= 0)
			return ret;
	}
	if ((ret = sieve_opr_stringlist_read(renv, address, "results",
					     &results_list)) <= 0)
		return ret;

	sieve_runtime_trace(renv, SIEVE_TRLVL_TESTS, "dkim test");
	sieve_runtime_trace_descend(renv);
	T_BEGIN {
		ret = tst_dkim_match(renv, &mcht, &cmp, domain_list,
				     selector_list, aligned, results_list,
				     &match);
	} T_END;
	sieve_runtime_trace_ascend(renv);
	if (ret <= 0)
		return ret;

	sieve_interpreter_set_test_result(renv->interp, match > 0);
	return SIEVE_EXEC_OK;
}
