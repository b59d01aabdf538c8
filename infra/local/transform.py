"""The SAM transform CloudFormation runs, run here: infra/template.yaml in,
the CloudFormation template CloudFormation would deploy out (JSON).

    transform.py [TEMPLATE] [--out FILE] [--code-bucket BUCKET]

aws-sam-translator is the library behind CloudFormation's
AWS::Serverless-2016-10-31 transform; cfn-lint (since 1.54) no longer runs
it, so a template cfn-lint passes can still be refused at deploy time.

Before CloudFormation sees a template, `sam build` and `sam deploy` replace
each function's local CodeUri with the S3 object they uploaded; here every
local CodeUri becomes s3://BUCKET/<function>.zip (what the deployment test
uploads as placeholder code). Managed policies are referred to by ARN only,
so no IAM lookup is made (offline). Exit status 1 with SAM's own messages
when the transform refuses the template."""

import argparse
import json
import os
import sys

import boto3
import yaml
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator


class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms (!Ref, !GetAtt, !Sub, ...)."""


def _intrinsic(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {"Fn::" + suffix: value}


CfnLoader.add_multi_constructor("!", _intrinsic)


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=CfnLoader)  # noqa: S506 (a SafeLoader)


def with_uploaded_code(template, bucket):
    """Every function's local CodeUri as the S3 object a deploy would upload."""
    for name, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource.setdefault("Properties", {})
        code = properties.get("CodeUri")
        if isinstance(code, str) and not code.startswith("s3://"):
            properties["CodeUri"] = f"s3://{bucket}/{name}.zip"
    return template


def transform(template):
    # The region only decides the partition of the ARNs SAM writes.
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    return translator.translate(
        template,
        parameter_values={},
        get_managed_policy_map=lambda: {},
    )


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template", nargs="?", default=os.path.join(here, "..", "template.yaml"))
    parser.add_argument("--out", help="where to write the JSON (default: stdout)")
    parser.add_argument("--code-bucket", default="organizations-code")
    args = parser.parse_args()

    try:
        cloudformation = transform(with_uploaded_code(load(args.template), args.code_bucket))
    except InvalidDocumentException as e:
        print(f"{args.template}: the SAM transform refuses this template:", file=sys.stderr)
        for cause in e.causes:
            print(f"  - {cause.message}", file=sys.stderr)
        sys.exit(1)

    text = json.dumps(cloudformation, indent=1, sort_keys=True) + "\n"
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
