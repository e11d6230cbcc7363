"""Short playbook entries for other resources, such as the detection detail.

Kept apart from `serializers` because the detection serializers import this module,
and `serializers` imports theirs.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from playbooks.models import Playbook


class PlaybookLinkSerializer(serializers.ModelSerializer):
    """A playbook's name, version and URLs, without its content."""

    id = serializers.UUIDField(source="uuid")
    url = serializers.HyperlinkedIdentityField(view_name="api:playbook-detail", lookup_field="slug")
    html_url = serializers.SerializerMethodField()
    markdown_url = serializers.SerializerMethodField()
    cacao_url = serializers.SerializerMethodField()

    class Meta:
        model = Playbook
        fields = [
            "id",
            "slug",
            "title",
            "status",
            "version",
            "url",
            "html_url",
            "markdown_url",
            "cacao_url",
        ]

    def get_html_url(self, playbook: Playbook) -> str:
        request = self.context.get("request")
        path = playbook.get_absolute_url()
        return request.build_absolute_uri(path) if request else path

    @extend_schema_field(serializers.URLField())
    def get_markdown_url(self, playbook: Playbook) -> str:
        return self._download_url(playbook, "api:playbook-markdown-download")

    @extend_schema_field(serializers.URLField())
    def get_cacao_url(self, playbook: Playbook) -> str:
        return self._download_url(playbook, "api:playbook-cacao-download")

    def _download_url(self, playbook: Playbook, view_name: str) -> str:
        return reverse(
            view_name, kwargs={"slug": playbook.slug}, request=self.context.get("request")
        )
